"""Redis cache-aside for candle windows and quotes (read by the API, updated by the feed).

Candles are cached in chunks of ``CHUNK_BARS`` bars per (symbol, timeframe), aligned
to multiples of ``CHUNK_BARS * timeframe`` since the epoch, as ready-to-send orjson
bytes. A request reads the one to six chunks its window covers with one MGET;
a miss loads the chunk from Postgres under a short lock so a burst of requests
for a cold chunk costs one query (stampede protection). Chunks whose buckets
are all closed never change and live a day; the chunk holding the forming
bucket is rewritten by the feed when a candle closes (updated, not just expired).
See docs/market-data.md for keys and TTLs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping

import orjson
import structlog
from redis import Redis
from redis.exceptions import RedisError

from models.market.candles import Row

log = structlog.get_logger(__name__)

CHUNK_BARS = 1000
CLOSED_TTL = 24 * 3600
OPEN_TTL = 600
QUOTE_TTL = 30
FALLBACK_QUOTE_TTL = 5
LOCK_TTL = 5
LOCK_WAIT_S = 1.0

Loader = Callable[[int, int], list[Row]]


def chunk_key(symbol: str, timeframe: str, index: int) -> str:
    """Redis key of one chunk."""
    return f"mkt:candles:{symbol}:{timeframe}:{index}"


# Bumped when the body of a candle response changes (2: values rounded to the instrument's
# precisions), so copies kept under the old format are never served after a deploy.
RESPONSE_FORMAT = 2


def response_key(symbol: str, timeframe: str, start: int, end: int, limit: int) -> str:
    """Redis key of a finished response body for a closed candle window."""
    return f"mkt:resp:{symbol}:{timeframe}:{start}:{end}:{limit}:v{RESPONSE_FORMAT}"


# Store a chunk only if the symbol's generation is still the one read before its rows were:
# an import ends the generation (models/market/responses.py), so rows read just before
# it committed are never put back after it.
_SET_IF_SAME_GENERATION = """
if redis.call('get', KEYS[2]) == ARGV[3] then
  return redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 0
"""


def generation_key(symbol: str) -> str:
    """Redis key of a symbol's history generation (see models/market/responses.py)."""
    return f"mkt:gen:{symbol}"


def quote_key(symbol: str) -> str:
    """Redis key of a symbol's quote body."""
    return f"mkt:quote:{symbol}"


def stream_key(symbol: str) -> str:
    """The capped Redis stream of one symbol's quotes and candles (written by the feed)."""
    return f"mkt:stream:{symbol}"


STATS_KEY = "mkt:stats"

# When this process last rewrote each symbol's history (time.monotonic()). A response
# copy kept in this process trusts its generation only if it read it after that.
_rewritten_here: dict[str, float] = {}


def rewritten_here_at(symbol: str) -> float:
    """When this process last invalidated ``symbol`` (monotonic seconds; 0.0 if never)."""
    return _rewritten_here.get(symbol, 0.0)


class CandleCache:
    """Chunked candle cache over one Redis connection."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def _count(self, hits: int, misses: int) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            if hits:
                pipe.hincrby(STATS_KEY, "candle_hits", hits)
            if misses:
                pipe.hincrby(STATS_KEY, "candle_misses", misses)
            pipe.execute()
        except RedisError:
            pass

    def _fill(
        self, symbol: str, key: str, span: tuple[int, int], closed: bool, loader: Loader
    ) -> list[Row]:
        """Load a missing chunk under a short lock; waiters read what the filler stores.

        The rows are stored only if the symbol's generation did not change while they were
        read: a filler that read just before an import committed must not put the old rows
        back after the import dropped them.
        """
        start, end = span
        lock = f"mkt:lock:{key}"
        if self.redis.set(lock, b"1", nx=True, ex=LOCK_TTL):
            try:
                guard = generation_key(symbol)
                token = secrets.token_hex(8)  # the generation, if the symbol has none yet
                seen = self.redis.set(guard, token, nx=True, get=True) or token
                rows = loader(start, end)
                ttl = CLOSED_TTL if closed else OPEN_TTL
                self.redis.eval(
                    _SET_IF_SAME_GENERATION, 2, key, guard, orjson.dumps(rows), ttl, seen
                )
                return rows
            finally:
                self.redis.delete(lock)
        deadline = time.monotonic() + LOCK_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(0.02)
            cached = self.redis.get(key)
            if cached is not None:
                return list(orjson.loads(cached))
        return loader(start, end)  # the filler is slow or gone: answer anyway, uncached

    def window(
        self,
        symbol: str,
        timeframe: str,
        *,
        timeframe_ms: int,
        start: int,
        end: int,
        limit: int,
        now_ms: int,
        loader: Loader,
    ) -> list[Row]:
        """Up to ``limit`` rows with ``start <= ts < end``, oldest first."""
        span = timeframe_ms * CHUNK_BARS
        forming = now_ms // timeframe_ms * timeframe_ms
        rows: list[Row] = []
        index = start // span
        hits = misses = 0
        try:
            while len(rows) < limit and index * span < end:
                batch = list(range(index, min(index + 6, -(-end // span))))
                values = self.redis.mget([chunk_key(symbol, timeframe, i) for i in batch])
                for i, value in zip(batch, values, strict=True):
                    lo, hi = i * span, (i + 1) * span
                    if value is not None:
                        hits += 1
                        chunk = orjson.loads(value)
                    else:
                        misses += 1
                        key = chunk_key(symbol, timeframe, i)
                        chunk = self._fill(symbol, key, (lo, hi), hi <= forming, loader)
                    rows.extend(r for r in chunk if start <= r[0] < end)
                    if len(rows) >= limit:
                        break
                index = batch[-1] + 1
        except RedisError as exc:
            log.warning("candle_cache_unavailable", error_type=type(exc).__name__)
            return loader(start, end)[:limit]
        finally:
            self._count(hits, misses)
        return rows[:limit]

    def put_closed_candle(self, symbol: str, timeframe: str, timeframe_ms: int, row: Row) -> bool:
        """Write one bucket's latest values into its cached chunk, if that chunk is cached."""
        span = timeframe_ms * CHUNK_BARS
        key = chunk_key(symbol, timeframe, int(row[0]) // span)
        cached = self.redis.get(key)
        if cached is None:
            return False  # not cached: the next reader loads it from Postgres
        chunk: list[Row] = list(orjson.loads(cached))
        if chunk and chunk[-1][0] == row[0]:
            chunk[-1] = row
        elif not chunk or chunk[-1][0] < row[0]:
            chunk.append(row)
        else:
            chunk = sorted([r for r in chunk if r[0] != row[0]] + [row], key=lambda r: r[0])
        self.redis.set(key, orjson.dumps(chunk), ex=OPEN_TTL)
        return True

    def invalidate(
        self, symbol: str, timeframe: str, timeframe_ms: int, start: int, end: int
    ) -> int:
        """Drop the chunks overlapping [start, end), and end the symbol's generation.

        Used after an import rewrote history; closed windows are never invalidated otherwise.
        A new generation makes every cached response of the symbol outdated: at once in
        Redis and in this process, within ``GENERATION_TRUST_S`` in the other web processes
        (models/market/responses.py). Its Redis copies are deleted too, to free the memory.
        """
        span = timeframe_ms * CHUNK_BARS
        keys = [chunk_key(symbol, timeframe, i) for i in range(start // span, -(-end // span))]
        keys.append(generation_key(symbol))
        keys += list(self.redis.scan_iter(match=f"mkt:resp:{symbol}:{timeframe}:*", count=1000))
        deleted = int(self.redis.delete(*keys))
        _rewritten_here[symbol] = time.monotonic()  # after the delete: see rewritten_here_at
        return deleted

    def stats(self) -> dict[str, int]:
        """Hit and miss counters since the cache was last flushed."""
        raw = self.redis.hgetall(STATS_KEY)
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def cached_quote(redis: Redis, symbol: str) -> bytes | None:
    """The quote body the feed last published, or None (Redis down counts as a miss)."""
    try:
        value = redis.get(quote_key(symbol))
    except RedisError:
        return None
    if value is None:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


def store_quote(
    redis: Redis, symbol: str, body: Mapping[str, object], ttl: int = QUOTE_TTL
) -> bytes:
    """Serialise and cache a quote body; returns the bytes (Redis failures are logged)."""
    data = orjson.dumps(body)
    try:
        redis.set(quote_key(symbol), data, ex=ttl)
    except RedisError as exc:
        log.warning("quote_cache_write_failed", error_type=type(exc).__name__)
    return data


def stream_heads(redis: Redis, symbols: list[str]) -> dict[str, dict[str, object]]:
    """Per symbol, its stream's length and newest entry id (None when it has none)."""
    pipe = redis.pipeline(transaction=False)
    for symbol in symbols:
        pipe.xlen(stream_key(symbol))
        pipe.xrevrange(stream_key(symbol), count=1)
    replies = pipe.execute()
    heads: dict[str, dict[str, object]] = {}
    for i, symbol in enumerate(symbols):
        length, newest = replies[2 * i], replies[2 * i + 1]
        last = newest[0][0] if newest else None
        heads[symbol] = {
            "length": int(length),
            "last_id": last.decode() if isinstance(last, bytes) else last,
        }
    return heads
