"""The one-round-trip limiter storage agrees with ``limits``' own Redis storage."""

from __future__ import annotations

from limits.storage import RedisStorage
from redis import Redis

from api.ratelimit_storage import OneTripRedisStorage, storage_uri
from tests.helpers import REDIS_URL


def test_hits_and_windows_match_the_stock_storage(redis: Redis) -> None:
    ours = OneTripRedisStorage(storage_uri(REDIS_URL or ""))
    stock = RedisStorage(REDIS_URL or "")
    results = [ours.acquire_entry("k", 3, 60) for _ in range(4)]
    assert results == [True, True, True, False]  # the fourth exceeds 3 per minute
    # The window the hit remembered equals what the stock storage reads from Redis ...
    remembered = ours.get_moving_window("k", 3, 60)
    assert remembered == stock.get_moving_window("k", 3, 60)
    assert remembered[1] == 3
    # ... and a lookup without a fresh hit goes to Redis itself.
    assert ours.get_moving_window("k", 3, 60) == remembered
    assert stock.acquire_entry("k", 3, 60) is False  # both see the same entries
    assert ours.get_moving_window("other", 3, 60)[1] == 0
