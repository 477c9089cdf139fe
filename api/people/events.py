"""``GET /api/v1/me/events``: my notifications and bot events as Server-Sent Events.

The events come from my Redis stream ``events:user:<uuid>``, which the outbox relay
(workers/outbox_relay.py) appends to after each commit that staged one. The stream
runs on the market stream's machinery (``api.market.stream.open_topics``): the same
per-process caps on ``web`` and on the ``streams`` process, the same per-user slots
(a user's market and events streams share ``SSE_MAX_STREAMS_PER_USER``), the same
heartbeats. Each event's id is its Redis entry id, so ``Last-Event-ID`` resumes
exactly after it. See docs/accounts.md#live-events.
"""

from __future__ import annotations

import uuid

from flask import Response, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt
from flask_smorest import abort
from redis import Redis

from api.access import authenticated, current_user
from api.errors import ErrorOut
from api.extensions import redis_client
from api.market.hub import text
from api.market.stream import after, open_topics
from api.people import blp
from api.ratelimit import caller_key
from models.db import session as db
from models.people.outbox import events_key

MAX_ID_CHARS = 41  # two 20-digit numbers and the dash: the most a Redis stream id can be

SSE_CONTENT = {
    "description": "`text/event-stream` of `notification`, `bot.status`, `bot.trade` and "
    "`bot.failure` events",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
LAST_EVENT_ID = {
    "in": "header",
    "name": "Last-Event-ID",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_ID_CHARS, "pattern": r"^\d+-\d+$"},
    "description": "Resume after this event (its `id`); `0-0` replays every event kept.",
}


def parse_event_id(header: str | None) -> str | None:
    """The Redis stream id a client resumes after; None when it sent none.

    A malformed id is a 422, not a silent start from now: the client would never learn
    that it missed events.
    """
    if header is None or not header.strip():
        return None
    value = header.strip()
    ms, dash, seq = value.partition("-")
    if not (dash and len(value) <= MAX_ID_CHARS and _digits(ms) and _digits(seq)):
        message = "Last-Event-ID must be an event id from this stream, such as 1700000000000-0."
        abort(422, message=message, errors={"headers": {"Last-Event-ID": [message]}})
    return f"{int(ms)}-{int(seq)}"


def _digits(part: str) -> bool:
    return part.isascii() and part.isdigit()


def open_my_events(
    user_id: uuid.UUID, last_event_id: str | None, redis: Redis, until: float | None = None
) -> Response:
    """The caller's events stream, resumed after ``last_event_id`` (already parsed) if any.

    An id later than the stream's newest entry (a stream that expired, or a client's
    guess) starts from the newest, so live events are never held back waiting for it.
    The stream ends at its first heartbeat after ``until`` (the token's expiry), so a
    disabled account or a revoked session stops receiving within one token lifetime.
    """
    topic = events_key(user_id)

    def starting() -> dict[str, str]:
        newest = redis.xrevrange(topic, count=1)
        latest = text(newest[0][0]) if newest else "0-0"
        if last_event_id is None or after(last_event_id, latest):
            return {topic: latest}
        return {topic: last_event_id}

    return open_topics((topic,), caller_key(), redis, starting, bare=True, until=until)


@blp.route("/events")
class MyEvents(MethodView):
    @authenticated
    @blp.doc(
        operationId="streamMyEvents",
        responses={"200": SSE_CONTENT},
        parameters=[LAST_EVENT_ID],
    )
    @blp.response(200, description=SSE_CONTENT["description"])
    @blp.alt_response(422, schema=ErrorOut, description="Malformed Last-Event-ID")
    @blp.alt_response(429, schema=ErrorOut, description="Too many open streams")
    @blp.alt_response(503, schema=ErrorOut, description="This server's streams are all taken")
    def get(self) -> Response:
        """My notifications and bot events as Server-Sent Events; resume with Last-Event-ID."""
        resume = parse_event_id(request.headers.get("Last-Event-ID"))
        user_id = current_user().id  # from the token: never anyone else's stream
        db.rollback()  # no transaction stays open for the life of the stream
        expires = get_jwt().get("exp")
        until = float(expires) if expires is not None else None
        return open_my_events(user_id, resume, redis_client(), until)
