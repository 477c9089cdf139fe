"""A Redis storage for the rate limiter that needs one round trip per limit, not two.

flask-limiter hits a moving-window limit (one Lua call) and then, to write the
``X-RateLimit-*`` headers, asks the storage for the window (a second Lua call).
Here the hit returns the window too, and the header lookup that follows in the same
thread is answered from it. On the cached candles endpoint the limiter was 40 % of
a request's time (docs/performance.md); this halves its Redis work.

The data layout is that of ``limits``' own RedisStorage (a list of timestamps per
key, newest first), so both read and write the same keys. Selected with the URI
scheme ``botyard+redis://`` (or ``botyard+rediss://``).

It also carries the limiter's failover, so that only an unreachable Redis triggers it:
on a connection error or timeout it counts in this process's memory for
:data:`RETRY_REDIS_S` seconds, then tries Redis again. flask-limiter's own
``in_memory_fallback`` switched over on *any* exception raised while limiting (a key
function failing on a hostile body did it, issue 12), and stayed in memory, where each
web process keeps its own count. Any other error propagates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from limits.storage import MemoryStorage, RedisStorage
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = structlog.get_logger(__name__)

T = TypeVar("T")

# After a failed call, count in memory this long before trying Redis again: a dead Redis
# costs one connect timeout per interval and process, not one per request.
RETRY_REDIS_S = 5.0

# The same acquisition as limits' acquire_moving_window.lua, followed by the same binary
# search for the window's oldest live entry as moving_window.lua: {acquired, oldest, count}.
_ACQUIRE_AND_WINDOW = """
local timestamp = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local acquired = 0
if amount <= limit then
    local entry = redis.call('lindex', KEYS[1], limit - amount)
    if not (entry and tonumber(entry) >= timestamp - expiry) then
        for i = 1, amount do
            redis.call('lpush', KEYS[1], timestamp)
        end
        redis.call('ltrim', KEYS[1], 0, limit - 1)
        redis.call('expire', KEYS[1], expiry)
        acquired = 1
    end
end
local target = timestamp - expiry
local low, high, index = 0, redis.call('llen', KEYS[1]) - 1, -1
while low <= high do
    local mid = math.floor((low + high) / 2)
    local value = tonumber(redis.call('lindex', KEYS[1], mid))
    if value and value >= target then
        index = mid
        low = mid + 1
    else
        high = mid - 1
    end
end
if index >= 0 then
    return {acquired, tostring(tonumber(redis.call('lindex', KEYS[1], index))), index + 1}
end
return {acquired, tostring(timestamp), 0}
"""

# A window remembered from a hit answers the header lookup only within this many seconds.
_FRESH_S = 1.0


class OneTripRedisStorage(RedisStorage):
    """``limits``' RedisStorage whose moving-window hit also returns the window."""

    STORAGE_SCHEME = ["botyard+redis", "botyard+rediss"]

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix("botyard+"), **options)
        self._windows = threading.local()
        self._acquire_and_window = self.get_connection().register_script(
            _ACQUIRE_AND_WINDOW.encode()
        )
        self.memory = MemoryStorage()
        self._redis_retry_at = 0.0  # monotonic; in memory until then

    @property
    def in_memory(self) -> bool:
        """Whether limits are counted in this process's memory (Redis was unreachable)."""
        return time.monotonic() < self._redis_retry_at

    def _failover(self, on_redis: Callable[[], T], in_memory: Callable[[], T]) -> T:
        """``on_redis()``, or ``in_memory()`` while Redis is unreachable (connection errors)."""
        if self.in_memory:
            return in_memory()
        try:
            result = on_redis()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not self._redis_retry_at:
                log.warning(
                    "rate_limit_storage_unreachable",
                    detail="Rate limit storage unreachable - falling back to in-memory storage",
                    error_type=type(exc).__name__,
                )
            self._redis_retry_at = time.monotonic() + RETRY_REDIS_S
            return in_memory()
        if self._redis_retry_at:
            log.info("rate_limit_storage_recovered")
            self._redis_retry_at = 0.0
        return result

    def _remembered(self) -> dict[tuple[str, int, int], tuple[float, float, int]]:
        windows: dict[tuple[str, int, int], tuple[float, float, int]] | None = getattr(
            self._windows, "value", None
        )
        if windows is None:
            windows = self._windows.value = {}
        return windows

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` entries if the window allows (in Redis, else in memory)."""
        return self._failover(
            lambda: self._acquire_in_redis(key, limit, expiry, amount),
            lambda: self.memory.acquire_entry(key, limit, expiry, amount),
        )

    def _acquire_in_redis(self, key: str, limit: int, expiry: int, amount: int) -> bool:
        """Take ``amount`` entries if the window allows; remember the window either way."""
        now = time.time()
        acquired, oldest, count = self._acquire_and_window(
            [self.prefixed_key(key)], [now, limit, expiry, amount]
        )
        self._remembered()[(key, limit, expiry)] = (time.monotonic(), float(oldest), int(count))
        return bool(acquired)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window as the last hit in this thread left it, else from Redis (or memory)."""
        remembered = self._remembered().pop((key, limit, expiry), None)
        if remembered is not None and time.monotonic() - remembered[0] < _FRESH_S:
            return remembered[1], remembered[2]
        return self._failover(
            lambda: RedisStorage.get_moving_window(self, key, limit, expiry),
            lambda: self.memory.get_moving_window(key, limit, expiry),
        )

    def refund_entry(self, key: str) -> None:
        """Give back the newest entry of a moving window: an attempt that turned out not to count.

        Taking an entry up front and refunding it is race-free where flask-limiter's
        ``deduct_when`` is not: that tests the window before the view and deducts after, so
        concurrent requests all pass the test (a burst of guesses would overrun the budget).
        """

        def in_memory() -> None:
            with self.memory.locks[key]:
                events = self.memory.events.get(key)
                if events:
                    events.pop(0)  # entries are newest first, as in Redis

        redis: Any = self.get_connection()
        self._failover(lambda: redis.lpop(self.prefixed_key(key)), in_memory)

    def clear(self, key: str) -> None:
        """Forget ``key`` wherever it is counted."""
        self.memory.clear(key)
        self._failover(lambda: RedisStorage.clear(self, key), lambda: None)


def storage_uri(redis_url: str) -> str:
    """flask-limiter's storage URI for ``redis_url``, selecting this storage."""
    return f"botyard+{redis_url}"
