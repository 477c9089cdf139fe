"""Queue names by latency class, and the Redis connection the workers use."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from settings import Settings

BOTS = "bots"  # live ticks: must never wait behind anything else
BACKTESTS = "backtests"  # CPU heavy
DEFAULT = "default"  # aggregation, ingestion, housekeeping
NOTIFICATIONS = "notifications"  # email, webhooks

# Listed in priority order: an RQ worker always drains earlier queues first.
ALL_QUEUES = (BOTS, DEFAULT, NOTIFICATIONS, BACKTESTS)


def redis_connection(settings: Settings) -> Redis:
    """A Redis client for queues (no socket timeout: workers block on BLPOP)."""
    return Redis.from_url(settings.redis_url, socket_connect_timeout=settings.redis_timeout)


def get_queue(name: str, connection: Redis) -> Queue:
    """The named queue; unknown names are a programming error."""
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection)
