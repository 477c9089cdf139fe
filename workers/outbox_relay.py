"""The process's outbox relay: after a transaction commits, queue its deliveries and
publish its live events (models/people/outbox.py stages both).

FIRST CUT: the notifications workstream owns ``enqueue_deliveries`` and the events
workstream owns ``publish_events``; the relay's shape stays.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from redis import Redis
from rq import Retry

from models.people import outbox
from workers.queues import NOTIFICATIONS, get_queue

EVENTS_STREAM = "events:user:{user_id}"
EVENTS_MAXLEN = 1000
DELIVERY_RETRY = Retry(max=6, interval=[10, 30, 120, 600, 1800, 3600])
# Webhooks back off further (someone else's server may be down for hours): 30 s ... 6 h.
WEBHOOK_RETRY = Retry(max=5, interval=[30, 120, 600, 3600, 21600])
RETRIES = {"webhook": WEBHOOK_RETRY}


def delivery_job_id(delivery_id: uuid.UUID | str) -> str:
    """One RQ job per delivery: queueing it twice is harmless."""
    return f"deliver-{delivery_id}"


# The job that delivers each channel (the webhook one has its own module and backoff).
DELIVERY_JOBS = {
    "email": "workers.notify.deliver_email",
    "webhook": "workers.webhooks.deliver_webhook",
}


def enqueue_deliveries(connection: Redis, deliveries: list[tuple[uuid.UUID, str]]) -> None:
    """Queue each (delivery id, channel)'s job on ``notifications``."""
    queue = get_queue(NOTIFICATIONS, connection)
    for delivery_id, channel in deliveries:
        queue.enqueue(
            DELIVERY_JOBS[channel],
            str(delivery_id),
            job_id=delivery_job_id(delivery_id),
            job_timeout=60,
            retry=RETRIES.get(channel, DELIVERY_RETRY),
            result_ttl=3600,
            failure_ttl=7 * 86400,
        )


def publish_events(connection: Redis, events: list[tuple[uuid.UUID, str, dict[str, Any]]]) -> None:
    """Append each event to its user's live stream (bounded, oldest dropped first)."""
    pipe = connection.pipeline(transaction=False)
    for user_id, kind, data in events:
        pipe.xadd(
            EVENTS_STREAM.format(user_id=user_id),
            {"kind": kind, "data": orjson.dumps(data)},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )
    pipe.execute()


def install(connection: Redis) -> None:
    """Make this process relay staged work through ``connection`` after each commit."""

    def relay(work: outbox.Staged) -> None:
        if work.deliveries:
            enqueue_deliveries(connection, work.deliveries)
        if work.events:
            publish_events(connection, work.events)

    outbox.set_relay(relay)
