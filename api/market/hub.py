"""Server-Sent Events fan-out: one Redis reader per process, many clients.

A connection per client would hit redis-py's pool cap and Redis's own client
limits; instead a single daemon thread per web process blocks on ``XREAD`` over
the streams of every symbol someone in this process watches, and hands each
entry to the subscribers' queues. A subscriber whose queue overflows (a client
too slow to read) is marked lost, and its stream ends.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError

from models.market.cache import stream_key
from models.people.outbox import LIVE_EVENTS_KEY, USER_EVENTS_PREFIX, events_key

log = structlog.get_logger(__name__)

QUEUE_SIZE = 2000
Entry = tuple[str, str, dict[str, str]]  # (symbol, stream id, fields)


def topic_key(topic: str) -> str:
    """The Redis stream a topic is replayed from: a user's events stream is named as is
    (``events:user:<uuid>``), a symbol has its market stream."""
    return topic if topic.startswith(USER_EVENTS_PREFIX) else stream_key(topic)


def read_topic(topic: str) -> str:
    """The stream a topic's live entries are read from.

    Every user's live events come through the one shared stream ``events:live`` (the
    relay writes each event to it and to the user's own stream in one step), so the
    reader's ``XREAD`` names one key for all of them rather than one per open stream
    (10,000 keys cost each read about 40 ms).
    """
    return LIVE_EVENTS_KEY if topic.startswith(USER_EVENTS_PREFIX) else topic


def read_key(read: str) -> str:
    """The Redis key of a :func:`read_topic`."""
    return read if read == LIVE_EVENTS_KEY else stream_key(read)


def live_entry(entry_id: Any, fields: Any) -> Entry | None:
    """An entry of ``events:live`` as its user's topic sees it: the user's topic, the id it
    has in the user's own stream (what ``Last-Event-ID`` resumes from), kind and data."""
    values = {text(k): text(v) for k, v in (fields or {}).items()}
    user, own_id = values.get("user"), values.get("id")
    if not user or not own_id:
        return None
    data = {"kind": values.get("kind", "message"), "data": values.get("data", "{}")}
    return events_key(user), own_id, data


def routed(read: str, entries: Any) -> list[Entry]:
    """A batch read from ``read``'s stream as (topic, id, fields) entries."""
    if read != LIVE_EVENTS_KEY:
        return [entry_of(read, entry_id, fields) for entry_id, fields in entries]
    found = (live_entry(entry_id, fields) for entry_id, fields in entries)
    return [entry for entry in found if entry is not None]


def text(value: Any) -> str:
    """A Redis reply item as text (redis-py returns bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_of(symbol: str, entry_id: Any, fields: Any) -> Entry:
    """A stream entry with its id and fields decoded."""
    return symbol, text(entry_id), {text(k): text(v) for k, v in (fields or {}).items()}


@dataclass(eq=False)
class Subscriber:
    """One open SSE response; its ``symbols`` are topics (see :func:`topic_key`)."""

    symbols: tuple[str, ...]
    inbox: queue.Queue[Entry] = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))
    lost: bool = False

    def offer(self, entry: Entry) -> None:
        """Queue an entry without ever blocking the reader thread."""
        try:
            self.inbox.put_nowait(entry)
        except queue.Full:
            self.lost = True


class StreamPlaces:
    """A process's open streams, counted against its cap.

    A place is taken atomically before a stream opens (concurrent connects never
    overshoot the cap) and given back when it ends. The web hub and the streams
    process's fan-out both count their streams this way.
    """

    def __init__(self) -> None:
        self._places_lock = threading.Lock()
        self._reserved = 0

    def reserve(self, limit: int) -> bool:
        """Take one of the process's ``limit`` places; False when all are taken."""
        with self._places_lock:
            if self._reserved >= limit:
                return False
            self._reserved += 1
            return True

    def unreserve(self) -> None:
        """Give back a place taken by :meth:`reserve`."""
        with self._places_lock:
            self._reserved -= 1

    def open_streams(self) -> int:
        """Places taken: streams served plus those being opened."""
        with self._places_lock:
            return self._reserved


class StreamHub(StreamPlaces):
    """The per-process reader thread and its subscriber registry."""

    def __init__(self, redis: Redis, block_ms: int = 1000) -> None:
        super().__init__()
        self.redis = redis
        self.block_ms = block_ms
        self._subs: dict[str, set[Subscriber]] = defaultdict(set)
        self._positions: dict[str, str] = {}  # by read topic: symbols, and events:live
        self._users = 0  # user topics subscribed (they share the events:live read)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, sub: Subscriber) -> None:
        """Start delivering entries newer than now for ``sub.symbols``."""
        with self._lock:
            for symbol in sub.symbols:
                read = read_topic(symbol)
                if read not in self._positions:
                    latest = self.redis.xrevrange(read_key(read), count=1)
                    self._positions[read] = text(latest[0][0]) if latest else "0-0"
                if symbol != read and symbol not in self._subs:
                    self._users += 1
                self._subs[symbol].add(sub)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sse-hub", daemon=True)
                self._thread.start()
        self._wake.set()

    def unsubscribe(self, sub: Subscriber) -> None:
        """Stop delivering to ``sub``; symbols nobody watches are dropped from the read."""
        with self._lock:
            for symbol in sub.symbols:
                self._subs[symbol].discard(sub)
                if not self._subs[symbol]:
                    del self._subs[symbol]
                    read = read_topic(symbol)
                    if read != symbol:
                        self._users -= 1
                    if read == symbol or not self._users:
                        self._positions.pop(read, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                symbols = {read_key(read): read for read in self._positions}
                streams = {key: self._positions[read] for key, read in symbols.items()}
            if not streams:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                batches: Any = self.redis.xread(
                    streams,  # type: ignore[arg-type]
                    block=self.block_ms,
                    count=500,
                )
            except RedisError as exc:
                log.warning("sse_hub_read_failed", error_type=type(exc).__name__)
                self._wake.wait(1.0)
                continue
            for key, entries in batches or []:
                read = symbols[text(key)]
                with self._lock:
                    if read not in self._positions:
                        continue
                    self._positions[read] = text(entries[-1][0])
                    batch = routed(read, entries)
                    targets = {t: list(self._subs.get(t, ())) for t in {e[0] for e in batch}}
                for entry in batch:
                    for sub in targets[entry[0]]:
                        sub.offer(entry)
