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
from models.people.outbox import USER_EVENTS_PREFIX

log = structlog.get_logger(__name__)

QUEUE_SIZE = 2000
Entry = tuple[str, str, dict[str, str]]  # (symbol, stream id, fields)


def topic_key(topic: str) -> str:
    """The Redis stream behind a topic: a user's events stream is named as is, a symbol has
    its market stream. Both kinds share the reader, the places and the slots."""
    return topic if topic.startswith(USER_EVENTS_PREFIX) else stream_key(topic)


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
        self._positions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, sub: Subscriber) -> None:
        """Start delivering entries newer than now for ``sub.symbols``."""
        with self._lock:
            for symbol in sub.symbols:
                if symbol not in self._positions:
                    latest = self.redis.xrevrange(topic_key(symbol), count=1)
                    self._positions[symbol] = text(latest[0][0]) if latest else "0-0"
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
                    self._positions.pop(symbol, None)

    def _run(self) -> None:
        while True:
            with self._lock:
                symbols = {topic_key(s): s for s in self._subs}
                streams = {key: self._positions[s] for key, s in symbols.items()}
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
                symbol = symbols[text(key)]
                with self._lock:
                    if symbol not in self._positions:
                        continue
                    self._positions[symbol] = text(entries[-1][0])
                    targets = list(self._subs.get(symbol, ()))
                for entry_id, fields in entries:
                    entry = entry_of(symbol, entry_id, fields)
                    for sub in targets:
                        sub.offer(entry)
