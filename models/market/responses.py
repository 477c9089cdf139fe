"""Finished responses of closed candle windows: a copy in each web process, over one in Redis.

A closed window's response (its encoded body and ETag) never changes unless its symbol's
history is rewritten (a CSV import). Each symbol has a *generation*, a random token in
``mkt:gen:{symbol}``. Rewriting history deletes it, and the next reader makes a new one
(``SET NX GET``), so a flushed Redis also starts new generations. Every copy of a
response carries the generation it was built under and counts only while that is the
symbol's generation.

Each web process keeps copies in memory (least recently used first out, at most
``LOCAL_MAX_BYTES``) and remembers each symbol's generation with the time it read it.
A daemon thread re-reads the generations every ``SYNC_S`` and adds the hit counts of
the interval to ``mkt:stats`` in the same round trip. A request trusts a generation read
less than ``GENERATION_TRUST_S`` ago, so a hit in memory touches neither Redis nor
Postgres, and a rewrite reaches every process within ``GENERATION_TRUST_S`` (at once in
the process that made it). A request that finds no generation that recent (Redis
unreachable, the thread behind) asks Redis itself; if Redis cannot answer, the window
is built from Postgres and nothing is kept. See docs/market-data.md.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import structlog
from redis import Redis
from redis.exceptions import RedisError

from models.market.cache import STATS_KEY, generation_key, rewritten_here_at

log = structlog.get_logger(__name__)

RESPONSE_TTL = 24 * 3600
LOCAL_MAX_BYTES = 32 * 1024 * 1024
ENTRY_OVERHEAD = 200  # bytes charged per entry on top of its body (key, etag, objects)
SYNC_S = 0.5
GENERATION_TRUST_S = 1.0


@dataclass(frozen=True)
class CachedResponse:
    """A finished response: its ETag and body, built under ``generation``.

    Every copy of it, in Redis or in memory, is gone ``RESPONSE_TTL`` after it was built
    (``expires_at``, epoch seconds), whatever happens to the generation.
    """

    generation: str
    expires_at: float
    etag: str
    body: bytes

    @property
    def size(self) -> int:
        """Bytes charged against the process-local bound."""
        return len(self.body) + ENTRY_OVERHEAD


class BytesLRU:
    """A thread-safe least-recently-used map of responses, bounded by their total size."""

    def __init__(self, max_bytes: int = LOCAL_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held now (at most ``max_bytes``)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedResponse | None:
        """The entry under ``key``, now the most recently used, or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CachedResponse) -> None:
        """Keep ``entry``, evicting the least recently used until the total fits.

        An entry larger than a quarter of the bound is not kept: it would evict too much.
        """
        if entry.size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = entry
            self._bytes += entry.size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class ProcessResponses:
    """One web process's response copies, the generations it knows, its unsent counts."""

    def __init__(self, max_bytes: int = LOCAL_MAX_BYTES) -> None:
        self.copies = BytesLRU(max_bytes)
        self._generations: dict[str, tuple[str, float]] = {}  # symbol -> (token, read at)
        self._unsent: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._redis: Redis | None = None
        self._thread: threading.Thread | None = None

    def trusted_generation(self, symbol: str) -> str | None:
        """The symbol's generation if read recently enough to trust without asking Redis."""
        known = self._generations.get(symbol)
        if known is None:
            return None
        token, read_at = known
        if time.monotonic() - read_at >= GENERATION_TRUST_S or read_at <= rewritten_here_at(symbol):
            return None
        return token

    def learn(self, symbol: str, token: str, read_at: float) -> None:
        """Remember a generation read from Redis at ``read_at`` (taken before the read)."""
        with self._lock:
            known = self._generations.get(symbol)
            if known is None or known[1] < read_at:
                self._generations[symbol] = (token, read_at)

    def count(self, field: str) -> None:
        """Count a hit answered from memory; the sync thread adds it to ``mkt:stats``."""
        with self._lock:
            self._unsent[field] += 1

    def start(self, redis: Redis) -> None:
        """Make sure the sync thread runs in this process (cheap when it does)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            self._redis = redis
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="market-responses-sync", daemon=True
                )
                self._thread.start()

    def sync(self) -> None:
        """Re-read every known symbol's generation; add the unsent counts to ``mkt:stats``."""
        with self._lock:
            redis, symbols = self._redis, list(self._generations)
            unsent, self._unsent = self._unsent, Counter()
        if redis is None or not (symbols or unsent):
            return
        tokens = [secrets.token_hex(8) for _ in symbols]
        read_at = time.monotonic()
        try:
            pipe = redis.pipeline(transaction=False)
            for symbol, token in zip(symbols, tokens, strict=True):
                pipe.set(generation_key(symbol), token, nx=True, get=True)
            for field, amount in unsent.items():
                pipe.hincrby(STATS_KEY, field, amount)
            replies = pipe.execute()
        except RedisError as exc:
            log.warning("response_cache_sync_failed", error_type=type(exc).__name__)
            with self._lock:
                self._unsent.update(unsent)
            return
        for symbol, token, reply in zip(symbols, tokens, replies, strict=False):
            self.learn(symbol, _text(reply) or token, read_at)

    def forget(self) -> None:
        """Drop the copies, the generations and the unsent counts (tests)."""
        with self._lock:
            self._generations.clear()
            self._unsent.clear()
        self.copies.clear()

    def _run(self) -> None:
        while True:
            time.sleep(SYNC_S)
            try:
                self.sync()
            except Exception:  # the thread must outlive any surprise; requests fall back
                log.exception("response_cache_sync_crashed")


# One per web process, shared by its threads.
PROCESS_RESPONSES = ProcessResponses()


def forget_process_responses() -> None:
    """Drop this process's response copies and what it knows of generations (tests)."""
    PROCESS_RESPONSES.forget()


@dataclass(frozen=True)
class Lookup:
    """What a lookup found (``hit`` or None) and the generation to keep a miss under.

    ``generation`` is None when Redis could not be asked; such a miss is not kept.
    """

    key: str
    symbol: str
    generation: str | None
    hit: CachedResponse | None


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _decode(value: bytes | None) -> CachedResponse | None:
    """A Redis copy is ``generation\\nexpires_at\\netag\\nbody``; None for anything else."""
    if value is None:
        return None
    try:
        generation, expires_at, etag, body = bytes(value).split(b"\n", 3)
        return CachedResponse(generation.decode(), float(expires_at), etag.decode(), body)
    except (ValueError, UnicodeDecodeError):
        return None


class ResponseCache:
    """Closed-window responses: this process's copies in front of the shared Redis ones.

    Counts in ``mkt:stats``: ``response_lookups`` (every closed-window request),
    ``response_misses`` (built from the chunks or Postgres) and ``response_local_misses``
    (the lookups this process could not answer from memory).
    """

    def __init__(self, redis: Redis, memory: ProcessResponses = PROCESS_RESPONSES) -> None:
        self.redis = redis
        self.memory = memory

    def get(self, symbol: str, key: str) -> Lookup:
        """The response under ``key`` if a copy of the symbol's current generation exists."""
        memory = self.memory
        memory.start(self.redis)
        local = memory.copies.get(key)
        if local is not None and local.expires_at <= time.time():
            local = None  # expired: as if absent (the next copy replaces it)
        generation = memory.trusted_generation(symbol)
        if local is not None and local.generation == generation:
            memory.count("response_lookups")
            return Lookup(key, symbol, generation, local)
        return self._ask_redis(symbol, key, local)

    def _ask_redis(self, symbol: str, key: str, local: CachedResponse | None) -> Lookup:
        """One round trip for the generation (and the shared copy when there is no local one);
        a second one only when the local copy turns out to be outdated."""
        fresh = secrets.token_hex(8)  # the generation, if the symbol has none yet
        read_at = time.monotonic()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(generation_key(symbol), fresh, nx=True, get=True)
            pipe.hincrby(STATS_KEY, "response_lookups", 1)
            if local is None:
                pipe.get(key)
                pipe.hincrby(STATS_KEY, "response_local_misses", 1)
            replies = pipe.execute()
            generation = _text(replies[0]) or fresh
            self.memory.learn(symbol, generation, read_at)
            if local is not None and local.generation == generation:
                return Lookup(key, symbol, generation, local)
            if local is None:
                shared = _decode(replies[2])
            else:  # this process's copy is outdated: ask for the shared one
                pipe = self.redis.pipeline(transaction=False)
                pipe.get(key)
                pipe.hincrby(STATS_KEY, "response_local_misses", 1)
                shared = _decode(pipe.execute()[0])
            if shared is not None and shared.generation == generation:
                self.memory.copies.put(key, shared)
                return Lookup(key, symbol, generation, shared)
            self.redis.hincrby(STATS_KEY, "response_misses", 1)
        except RedisError:
            return Lookup(key, symbol, None, None)
        return Lookup(key, symbol, generation, None)

    def put(self, lookup: Lookup, etag: str, body: bytes) -> None:
        """Keep a response built after ``lookup`` missed (best effort; not without Redis)."""
        if lookup.generation is None:
            return
        expires_at = int(time.time()) + RESPONSE_TTL
        header = f"{lookup.generation}\n{expires_at}\n{etag}\n".encode()
        try:
            self.redis.set(lookup.key, header + body, ex=RESPONSE_TTL)
        except RedisError as exc:
            log.warning("response_cache_write_failed", error_type=type(exc).__name__)
            return
        entry = CachedResponse(lookup.generation, expires_at, etag, body)
        self.memory.copies.put(lookup.key, entry)
