"""A Redis storage for the rate limiter that needs one round trip per limit, not two.

flask-limiter hits a moving-window limit (one Lua call) and then, to write the
``X-RateLimit-*`` headers, asks the storage for the window (a second Lua call).
Here the hit returns the window too, and the header lookup that follows in the same
thread is answered from it. On the cached candles endpoint the limiter was 40 % of
a request's time (docs/performance.md); this halves its Redis work.

The data layout is that of ``limits``' own RedisStorage (a list of timestamps per
key, newest first), so both read and write the same keys. Selected with the URI
scheme ``botyard+redis://`` (or ``botyard+rediss://``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from limits.storage import RedisStorage

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

    def _remembered(self) -> dict[tuple[str, int, int], tuple[float, float, int]]:
        windows: dict[tuple[str, int, int], tuple[float, float, int]] | None = getattr(
            self._windows, "value", None
        )
        if windows is None:
            windows = self._windows.value = {}
        return windows

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Take ``amount`` entries if the window allows; remember the window either way."""
        now = time.time()
        acquired, oldest, count = self._acquire_and_window(
            [self.prefixed_key(key)], [now, limit, expiry, amount]
        )
        self._remembered()[(key, limit, expiry)] = (time.monotonic(), float(oldest), int(count))
        return bool(acquired)

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The window as the last hit in this thread left it, else from Redis."""
        remembered = self._remembered().pop((key, limit, expiry), None)
        if remembered is not None and time.monotonic() - remembered[0] < _FRESH_S:
            return remembered[1], remembered[2]
        window: tuple[float, int] = super().get_moving_window(key, limit, expiry)
        return window


def storage_uri(redis_url: str) -> str:
    """flask-limiter's storage URI for ``redis_url``, selecting this storage."""
    return f"botyard+{redis_url}"
