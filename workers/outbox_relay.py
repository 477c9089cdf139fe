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
from models.people.outbox import LIVE_EVENTS_KEY, events_key
from settings import Settings
from workers.queues import NOTIFICATIONS, get_queue

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


# The shared live stream only has to cover the readers' lag; each user's stream keeps history.
LIVE_MAXLEN = 10_000
# One event: into the user's stream (its id is the one clients resume from), then into the
# shared live stream with that id, atomically, so a reader never sees one without the other.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*',
                      'kind', ARGV[1], 'data', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*',
           'user', ARGV[3], 'id', id, 'kind', ARGV[1], 'data', ARGV[2])
return id
"""


def publish_events(
    connection: Redis,
    events: list[tuple[uuid.UUID, str, dict[str, Any]]],
    maxlen: int = 1000,
    ttl_s: int = 7 * 86400,
) -> None:
    """Append each event to its user's stream and to ``events:live``, in the order staged,
    in one round trip.

    A user's stream keeps about ``maxlen`` entries (Redis trims the oldest, a whole node
    at a time) and expires ``ttl_s`` after its latest entry: a quiet user's stream costs
    nothing. The stream readers (``api.market.hub``, ``api.streams.fanout``) follow the
    one live stream, whatever the number of users watching.
    """
    script = connection.register_script(_PUBLISH)
    pipe = connection.pipeline(transaction=False)
    for user_id, kind, data in events:
        keys = [events_key(user_id), LIVE_EVENTS_KEY]
        args: list[str | bytes | int] = [
            kind,
            orjson.dumps(data),
            str(user_id),
            maxlen,
            ttl_s,
            LIVE_MAXLEN,
        ]
        script(keys=keys, args=args, client=pipe)
    pipe.execute()


def install(connection: Redis, settings: Settings | None = None) -> None:
    """Make this process relay staged work through ``connection`` after each commit."""
    maxlen = settings.events_stream_maxlen if settings else 1000
    ttl_s = settings.events_stream_ttl_s if settings else 7 * 86400

    def relay(work: outbox.Staged) -> None:
        if work.deliveries:
            enqueue_deliveries(connection, work.deliveries)
        if work.events:
            publish_events(connection, work.events, maxlen, ttl_s)

    outbox.set_relay(relay)
