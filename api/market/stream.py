"""``GET /api/v1/market/stream?symbols=A,B``: quotes and candles as Server-Sent Events.

Each event's id is the position in every watched symbol's stream
(``BTC-USD=1700000000000-0,ETH-USD=…``), so a reconnecting client's
``Last-Event-ID`` resumes each symbol exactly where it stopped: entries after
those positions are replayed from the capped Redis streams, then live ones follow.
A comment line every ``SSE_HEARTBEAT_S`` (15 s) keeps proxies from closing an idle
connection.

The same view serves both processes. In ``web`` (gunicorn gthread) the response is a
generator that holds a thread for the life of the stream, so a web process serves at
most ``WEB_MAX_STREAMS``. In ``streams`` (``api.streams``, evented) the view checks,
subscribes and replays in a pool thread, then hands the listener to the event loop,
which does every later write (``api.streams.fanout``).
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, current_app, request, stream_with_context
from flask_smorest import abort
from redis import Redis

from api.market.hub import Entry, StreamHub, Subscriber, entry_of, text, topic_key
from models.market.cache import stream_key

REPLAY_MAX = 1000
SLOT_TTL_S = 60


def hub(app: Flask) -> StreamHub:
    """This process's hub (created on first use)."""
    existing: StreamHub | None = app.extensions.get("botyard.sse_hub")
    if existing is None:
        settings = app.extensions["botyard.settings"]
        existing = StreamHub(Redis.from_url(settings.redis_url, socket_connect_timeout=2))
        app.extensions["botyard.sse_hub"] = existing
    return existing


def parse_last_event_id(header: str | None, symbols: tuple[str, ...]) -> dict[str, str]:
    """Per-symbol stream positions from a Last-Event-ID; unknown or malformed parts are ignored."""
    positions: dict[str, str] = {}
    for part in (header or "").split(","):
        symbol, _, position = part.partition("=")
        ms, _, seq = position.partition("-")
        if symbol in symbols and _decimal(ms) and _decimal(seq):
            positions[symbol] = position
    return positions


def _decimal(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts characters such as "²"."""
    return text.isascii() and text.isdigit()


def after(a: str, b: str) -> bool:
    """Whether stream id ``a`` is later than ``b``."""
    a_ms, _, a_seq = a.partition("-")
    b_ms, _, b_seq = b.partition("-")
    return (int(a_ms), int(a_seq)) > (int(b_ms), int(b_seq))


# Drop expired slots, then take one if fewer than the limit are held: one round trip.
_ACQUIRE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zcard', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('zadd', KEYS[1], ARGV[3], ARGV[4])
redis.call('expire', KEYS[1], ARGV[5])
return 1
"""


class StreamSlots:
    """Open streams per caller, in Redis; slots expire, so a crashed process frees its own."""

    def __init__(self, redis: Redis, caller: str, limit: int) -> None:
        self.redis, self.key, self.limit = redis, f"sse:open:{caller}", limit
        self.slot = uuid.uuid4().hex

    def acquire(self) -> bool:
        """Take a slot unless the caller already holds ``limit`` live ones."""
        now = time.time()
        taken = self.redis.eval(
            _ACQUIRE, 1, self.key, now, self.limit, now + SLOT_TTL_S, self.slot, SLOT_TTL_S
        )
        return bool(taken)

    def renew(self) -> None:
        """Keep the slot alive while the stream is open."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.key, {self.slot: time.time() + SLOT_TTL_S})
        pipe.expire(self.key, SLOT_TTL_S)
        pipe.execute()

    def release(self) -> None:
        """Free the slot."""
        self.redis.zrem(self.key, self.slot)


def start_positions(
    redis: Redis, symbols: tuple[str, ...], resume: dict[str, str]
) -> dict[str, str]:
    """Where each symbol's stream starts for this client, in ``symbols`` order.

    A resumed symbol starts at the client's position; any other at its stream's last
    id (``0-0`` for an empty stream), so every event id names a position for every
    symbol and a later resume replays exactly what a quiet symbol got since.
    """
    fresh = [s for s in symbols if s not in resume]
    pipe = redis.pipeline(transaction=False)
    for symbol in fresh:
        pipe.xrevrange(stream_key(symbol), count=1)
    latest = dict(zip(fresh, pipe.execute() if fresh else [], strict=True))
    positions = {}
    for symbol in symbols:
        if symbol in resume:
            positions[symbol] = resume[symbol]
        else:
            last = latest[symbol]
            positions[symbol] = text(last[0][0]) if last else "0-0"
    return positions


def event_text(event_id: str, fields: dict[str, str]) -> str:
    """One SSE event: its id, type and data.

    A market entry names its type in ``type``, a user's event (workers/outbox_relay.py)
    in ``kind``.
    """
    kind = fields.get("type") or fields.get("kind") or "message"
    data = fields.get("data", "{}")
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


def _format(entry: Entry, positions: dict[str, str], bare: bool = False) -> str:
    """The SSE text of an entry; its id names every topic's position, or (``bare``, one
    topic) is the entry's own id."""
    topic, entry_id, fields = entry
    positions[topic] = entry_id
    if bare:
        return event_text(entry_id, fields)
    return event_text(",".join(f"{s}={p}" for s, p in positions.items()), fields)


def replay(
    redis: Redis, start: dict[str, str], positions: dict[str, str], bare: bool = False
) -> Iterator[str]:
    """The events each topic's stream got after the client's start position (at most
    REPLAY_MAX per topic)."""
    for topic, since in start.items():
        entries = redis.xrange(topic_key(topic), min=f"({since}", count=REPLAY_MAX)
        for entry_id, fields in entries or []:
            yield _format(entry_of(topic, entry_id, fields), positions, bare)


def _sse_response(body: Any, passthrough: bool = False) -> Response:
    response = Response(body, mimetype="text/event-stream", direct_passthrough=passthrough)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


def open_stream(
    symbols: tuple[str, ...], caller: str, last_event_id: str | None, redis: Redis
) -> Response:
    """The market's SSE response for ``symbols``, resumed after ``last_event_id``."""

    def starting() -> dict[str, str]:
        return start_positions(redis, symbols, parse_last_event_id(last_event_id, symbols))

    return open_topics(symbols, caller, redis, starting)


def open_topics(
    topics: tuple[str, ...],
    caller: str,
    redis: Redis,
    starting: Callable[[], dict[str, str]],
    *,
    bare: bool = False,
    until: float | None = None,
) -> Response:
    """An SSE response over ``topics`` (market symbols, or a user's events stream), after
    checking the per-process and per-caller stream limits.

    ``starting`` gives each topic's start position (read before subscribing); ``bare``
    event ids are the entry's own id (one topic). A stream with an ``until`` (epoch
    seconds, its token's expiry) ends at its first heartbeat after it: the client
    reconnects with a fresh token and resumes. The process's place is reserved
    atomically before anything else, so concurrent connects never overshoot the cap;
    every failure after that gives it back.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = app.extensions["botyard.settings"]
    fanout = app.extensions.get("botyard.fanout")  # set by the streams process only
    registry = fanout if fanout is not None else hub(app)
    cap = settings.sse_max_streams_per_process if fanout is not None else settings.web_max_streams
    if not registry.reserve(cap):
        abort(503, message="This server is at its limit of open streams; retry shortly.")
    try:
        slots = StreamSlots(redis, caller, settings.sse_max_streams_per_user)
        if not slots.acquire():
            abort(
                429,
                message=f"At most {settings.sse_max_streams_per_user} open streams per caller; "
                "close one first.",
            )
    except BaseException:
        registry.unreserve()
        raise
    try:
        # Read the starting positions before subscribing, then replay after them: an entry
        # that lands in between is replayed (and its live copy skipped), never lost.
        start = starting()
        if fanout is not None:
            # before the replay, as below
            listener = fanout.subscribe(topics, start, slots, redis, bare=bare, until=until)
        else:
            sub = Subscriber(topics)
            registry.subscribe(sub)  # before the replay, so nothing falls between the two
    except BaseException:
        slots.release()
        registry.unreserve()
        raise
    if fanout is not None:
        return _hand_off(fanout, listener, start, redis)
    heartbeat_s = settings.sse_heartbeat_s
    return _threaded(
        registry, sub, slots, start, redis, heartbeat_s=heartbeat_s, bare=bare, until=until
    )


def _threaded(
    the_hub: StreamHub,
    sub: Subscriber,
    slots: StreamSlots,
    start: dict[str, str],
    redis: Redis,
    *,
    heartbeat_s: float,
    bare: bool = False,
    until: float | None = None,
) -> Response:
    """The web process: a generator that holds a gunicorn thread for the life of the stream."""
    once = threading.Lock()

    def end() -> None:
        # Once, whether the generator ran to its end or never started (a HEAD request).
        if once.acquire(blocking=False):
            the_hub.unsubscribe(sub)
            the_hub.unreserve()
            slots.release()

    def generate() -> Iterator[str]:
        positions = dict(start)
        try:
            yield "retry: 2000\n\n"
            yield from replay(redis, start, positions, bare)
            last_beat = time.monotonic()
            while not sub.lost:
                try:
                    entry = sub.inbox.get(timeout=heartbeat_s)
                except queue.Empty:
                    entry = None
                if entry is not None:
                    seen = positions.get(entry[0])
                    if seen is None or after(entry[1], seen):
                        yield _format(entry, positions, bare)
                if time.monotonic() - last_beat >= heartbeat_s:
                    if until is not None and time.time() >= until:
                        return  # the token expired: the client reconnects with a fresh one
                    slots.renew()
                    last_beat = time.monotonic()
                    yield ": heartbeat\n\n"
        finally:
            end()

    response = _sse_response(stream_with_context(generate()))
    response.call_on_close(end)
    return response


def _hand_off(fanout: Any, listener: Any, start: dict[str, str], redis: Redis) -> Response:
    """The streams process: replay here, and leave the rest to its event loop.

    The listener also goes into the WSGI environ, so the server frees it even when the
    response never reaches it (a HEAD request, an error in a later hook).
    """
    request.environ["botyard.stream_listener"] = listener
    try:
        prelude = "retry: 2000\n\n" + "".join(
            replay(redis, start, listener.positions, listener.bare)
        )
    except BaseException:
        fanout.drop(listener)
        raise
    return _sse_response(HandOff(listener, prelude.encode()), passthrough=True)


class HandOff:
    """The body of a stream in the streams process: what to send first, and to whom the rest."""

    def __init__(self, listener: Any, prelude: bytes) -> None:
        self.listener, self.prelude = listener, prelude

    def __iter__(self) -> Iterator[bytes]:
        # Only the streams server knows how to serve it; any other server sends the prelude.
        yield self.prelude
