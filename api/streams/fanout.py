"""The `streams` process's fan-out: one Redis reader, events written straight to the sockets.

The web process's hub (``api.market.hub``) hands each entry to a queue that a
thread per stream drains. Here no stream owns a thread or a task: the reader task
formats an entry once per distinct event id and writes it to every listener's
transport itself (a non-blocking write into the socket's buffer), so a delivery
costs a few microseconds and 10,000 open streams cost memory, not threads.

Threads only touch the registry (under a lock): the app's views run in the
server's thread pool, reserve a place, subscribe, and hand the listener over; the
loop thread attaches it to its connection and does every write. A listener's
entries that arrive before it is attached wait in its backlog.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict, deque
from typing import Any, Protocol

import structlog
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.market.hub import Entry, StreamPlaces, read_key, read_topic, routed, text
from api.market.stream import SLOT_TTL_S, StreamSlots, after, event_text
from models.people.outbox import LIVE_EVENTS_KEY

log = structlog.get_logger("botyard.streams")

READ_COUNT = 500
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 10.0
HEARTBEAT = b": heartbeat\n\n"
HEARTBEATS = {True: b"%x\r\n%s\r\n" % (len(HEARTBEAT), HEARTBEAT), False: HEARTBEAT}
SLOT_BATCH = 1000
_RENEW = """
for i = 1, #KEYS do
  redis.call('zadd', KEYS[i], ARGV[1], ARGV[i + 2])
  redis.call('expire', KEYS[i], ARGV[2])
end
"""
_RELEASE = "for i = 1, #KEYS do redis.call('zrem', KEYS[i], ARGV[i]) end"


class Sink(Protocol):
    """Where a listener's bytes go: the connection that asked for the stream."""

    chunked: bool

    def send(self, data: bytes) -> None:
        """Write without blocking."""

    def close(self) -> None:
        """End the stream."""


def frame(data: bytes, chunked: bool) -> bytes:
    """``data`` as one chunk of a chunked body, or as is for a body that ends at close."""
    return b"%x\r\n%s\r\n" % (len(data), data) if chunked else data


class Listener:
    """One open stream: its symbols, what it has been sent, and where to send the rest."""

    __slots__ = (
        "backlog",
        "bare",
        "closed",
        "due",
        "positions",
        "sink",
        "slots",
        "symbols",
        "until",
    )

    def __init__(
        self,
        symbols: tuple[str, ...],
        positions: dict[str, str],
        slots: StreamSlots,
        bare: bool = False,
        until: float | None = None,
    ) -> None:
        self.symbols, self.positions, self.slots = symbols, positions, slots
        self.bare = bare  # one topic, event ids without its name (a user's events stream)
        self.until = until  # when the stream ends (its token's expiry, epoch seconds)
        self.sink: Sink | None = None
        self.backlog: list[Entry] = []
        self.closed = False
        self.due = 0.0  # when its next heartbeat is due (monotonic)

    def deliver(self, entry: Entry, frames: dict[tuple[str, bool], bytes], previous: str) -> None:
        """Send ``entry`` unless it was already sent; ``frames`` shares bytes between listeners.

        ``previous`` is the reader's last id of the symbol before this entry: a listener that
        is there (the usual case) needs no id comparison.
        """
        sink = self.sink
        if sink is None:
            self.backlog.append(entry)
            return
        symbol, entry_id, fields = entry
        positions = self.positions
        seen = positions.get(symbol)
        if seen is not None and seen != previous and not after(entry_id, seen):
            return
        positions[symbol] = entry_id
        if self.bare:
            event_id = entry_id
        elif len(positions) == 1:
            event_id = f"{symbol}={entry_id}"
        else:
            event_id = ",".join(f"{s}={p}" for s, p in positions.items())
        key = (event_id, sink.chunked)
        data = frames.get(key)
        if data is None:
            data = frames[key] = frame(event_text(event_id, fields).encode(), sink.chunked)
        sink.send(data)


class Fanout(StreamPlaces):
    """This process's registry of listeners, its Redis reader and its heartbeats."""

    def __init__(self, redis_url: str, heartbeat_s: float, block_ms: int = 1000) -> None:
        super().__init__()
        self.redis = AsyncRedis.from_url(redis_url, socket_connect_timeout=2)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self.heartbeat_s, self.block_ms = heartbeat_s, block_ms
        self._lock = threading.Lock()
        self._subs: dict[str, set[Listener]] = defaultdict(set)
        self._positions: dict[str, str] = {}  # by read topic: symbols, and events:live
        self._users = 0  # user topics subscribed (they share the events:live read)
        self._beats: deque[Listener] = deque()
        self._releases: list[StreamSlots] = []
        self._flush_scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- called from the app's threads ------------------------------------------------------

    def subscribe(
        self,
        symbols: tuple[str, ...],
        start: dict[str, str],
        slots: StreamSlots,
        redis: Redis,
        *,
        bare: bool = False,
        until: float | None = None,
    ) -> Listener:
        """A listener for ``symbols``, registered now so nothing after ``start`` is missed."""
        reads = {read_topic(s) for s in symbols}
        with self._lock:
            new = [read for read in reads if read not in self._positions]
        latest = {}
        for read in new:
            last = redis.xrevrange(read_key(read), count=1)
            latest[read] = text(last[0][0]) if last else "0-0"
        listener = Listener(symbols, dict(start), slots, bare, until)
        with self._lock:
            for symbol in symbols:
                read = read_topic(symbol)
                self._positions.setdefault(read, latest.get(read, "0-0"))
                if read != symbol and symbol not in self._subs:
                    self._users += 1
                self._subs[symbol].add(listener)
        return listener

    def drop(self, listener: Listener) -> None:
        """Forget ``listener``, free its place and its caller's slot (idempotent)."""
        with self._lock:
            if listener.closed:
                return
            listener.closed = True
            self.unreserve()
            for symbol in listener.symbols:
                subs = self._subs.get(symbol)
                if subs is not None:
                    subs.discard(listener)
                    if not subs:
                        del self._subs[symbol]
                        self._forget(symbol)
            self._releases.append(listener.slots)
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._schedule_flush)

    def _forget(self, topic: str) -> None:
        """Nobody watches ``topic`` any more: stop reading its stream if nobody else needs it
        (the caller holds the lock)."""
        read = read_topic(topic)
        if read != topic:
            self._users -= 1
        if read == topic or not self._users:
            self._positions.pop(read, None)

    # --- the loop thread ---------------------------------------------------------------------

    def attach(self, listener: Listener, sink: Sink) -> None:
        """Start writing to ``sink``: the backlog first, then live entries."""
        if listener.closed:
            sink.close()
            return
        listener.sink = sink
        frames: dict[tuple[str, bool], bytes] = {}
        for entry in listener.backlog:
            listener.deliver(entry, frames, previous="")
        listener.backlog = []
        listener.due = time.monotonic() + self.heartbeat_s
        self._beats.append(listener)

    async def run(self) -> None:
        """Read every watched symbol's stream and deliver; ride out Redis outages."""
        self.loop = asyncio.get_running_loop()
        beats = asyncio.create_task(self._heartbeats())
        backoff, failing = BACKOFF_FIRST_S, False
        try:
            while True:
                with self._lock:
                    symbols = {read_key(read): read for read in self._positions}
                    streams = {key: self._positions[read] for key, read in symbols.items()}
                if not streams:
                    await asyncio.sleep(0.05)
                    continue
                try:
                    batches: Any = await self.redis.xread(
                        streams,  # type: ignore[arg-type]
                        block=self.block_ms,
                        count=READ_COUNT,
                    )
                except (RedisError, OSError) as exc:
                    if not failing:
                        log.warning("streams_redis_unavailable", error_type=type(exc).__name__)
                    failing = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                if failing:
                    log.info("streams_redis_back")
                    failing, backoff = False, BACKOFF_FIRST_S
                for key, entries in batches or []:
                    self._deliver(symbols[text(key)], entries)
        finally:
            beats.cancel()

    def _deliver(self, read: str, entries: Any) -> None:
        with self._lock:
            previous = self._positions.get(read)
            if previous is None:
                return
            self._positions[read] = text(entries[-1][0])
            batch = routed(read, entries)
            targets = {t: list(self._subs.get(t, ())) for t in {e[0] for e in batch}}
        market = read != LIVE_EVENTS_KEY
        for entry in batch:
            frames: dict[tuple[str, bool], bytes] = {}
            # A user's entries carry their own stream's ids: each listener compares its own.
            since = previous if market else ""
            for listener in targets[entry[0]]:
                if not listener.closed:
                    listener.deliver(entry, frames, since)
            previous = entry[1]

    async def _heartbeats(self) -> None:
        """Each stream gets a comment every ``heartbeat_s``, and its slot renewed with it.

        The work is spread: every tick serves only the streams that are due, so 10,000
        streams never cost one long pause of the loop.
        """
        tick = min(1.0, self.heartbeat_s / 4)
        while True:
            await asyncio.sleep(tick)
            now, wall = time.monotonic(), time.time()
            renew: list[StreamSlots] = []
            while self._beats and self._beats[0].due <= now:
                listener = self._beats.popleft()
                if listener.closed or listener.sink is None:
                    continue
                if listener.until is not None and wall >= listener.until:
                    listener.sink.close()  # its token expired: the client comes back with a new one
                    continue
                listener.sink.send(HEARTBEATS[listener.sink.chunked])
                renew.append(listener.slots)
                listener.due = now + self.heartbeat_s
                self._beats.append(listener)
            if renew:
                await self._pipeline(renew, renew=True)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().create_task(self._flush_releases())

    async def _flush_releases(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Release the slots of every stream dropped so far (shutdown waits for this, so the
        clients' reconnects elsewhere are not refused by their own stale slots)."""
        with self._lock:
            slots, self._releases = self._releases, []
            self._flush_scheduled = False
        await self._pipeline(slots, renew=False)

    async def _pipeline(self, slots: list[StreamSlots], renew: bool) -> None:
        """Renew or release callers' stream slots, a Lua call per SLOT_BATCH (slots expire
        anyway). One call with many arguments costs the loop far less than a pipeline of
        two commands per slot."""
        script = self._renew if renew else self._release
        now = time.time()
        try:
            for first in range(0, len(slots), SLOT_BATCH):
                batch = slots[first : first + SLOT_BATCH]
                keys = [slot.key for slot in batch]
                args: list[str | float] = [slot.slot for slot in batch]
                if renew:
                    args = [now + SLOT_TTL_S, SLOT_TTL_S, *args]
                await script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            # Not fatal: a slot that is not renewed expires, one not released expires too.
            log.warning("streams_slots_not_saved", error_type=type(exc).__name__, renew=renew)

    def close_all(self) -> None:
        """End every stream (shutdown): clients reconnect elsewhere and resume."""
        with self._lock:
            listeners = {x for subs in self._subs.values() for x in subs}
        for listener in listeners:
            if listener.sink is not None:
                listener.sink.close()
            self.drop(listener)
