"""The only worker module the API imports: it puts work on queues and never runs it.

Each helper fixes the queue, a deterministic ``job_id`` (so the same work is
never queued twice), the timeout and the retry policy.
"""

from __future__ import annotations

from redis import Redis
from rq import Retry
from rq.job import Job

from workers.queues import DEFAULT, get_queue


def enqueue_purge_sessions(connection: Redis) -> Job:
    """Queue a session purge now (operators use this; the scheduler runs it hourly)."""
    return get_queue(DEFAULT, connection).enqueue(
        "workers.housekeeping.purge_sessions",
        job_id="housekeeping-purge-sessions-manual",
        job_timeout=300,
        retry=Retry(max=3, interval=[10, 30, 60]),
        result_ttl=3600,
    )
