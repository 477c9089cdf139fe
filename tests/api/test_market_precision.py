"""Quotes and candles reach clients rounded to the instrument's precisions, cached or not."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from flask.testing import FlaskClient
from redis import Redis

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.market.cache import generation_key
from models.market.candles import derive_timeframes, read_candles, upsert_candles
from models.market.instruments import sync_instruments
from models.market.responses import forget_process_responses
from models.market.tables import Instrument

MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a closed window
# BTC-USD: 2 price decimals, 6 size decimals. Five minutes whose float arithmetic is noisy:
# 60000.0 - 58757.6 == 1242.4000000000015 and 0.1 + 0.2 == 0.30000000000000004. The high of
# the second minute has more decimals than the instrument's (an import could bring that).
ROWS = [
    [T0 + 0 * MINUTE, 58757.6, 58800.0, 58700.0, 58790.0, 0.1],
    [T0 + 1 * MINUTE, 58790.0, 59900.123456, 58780.0, 59800.0, 0.2],
    [T0 + 2 * MINUTE, 59800.0, 59950.0, 59700.0, 59900.0, 0.1],
    [T0 + 3 * MINUTE, 59900.0, 59990.0, 59850.0, 59950.0, 0.2],
    [T0 + 4 * MINUTE, 59950.0, 60010.0, 59940.0, 60000.0, 0.1],
]
NOISE = re.compile(rb"\d\.\d*(0000|9999)\d")  # a run of zeros or nines before a last digit


def _btc(db: Any) -> Instrument:
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    btc = next(i for i in instruments if i.symbol == "BTC-USD")
    upsert_candles(btc.id, "1m", ROWS)
    derive_timeframes(btc, T0, T0 + 5 * MINUTE)
    db.commit()
    return btc


def test_derived_volumes_are_stored_at_the_size_precision(db: Any) -> None:
    btc = _btc(db)
    five = read_candles(btc.id, "5m", T0, T0 + 5 * MINUTE, 1)
    assert five[0][5] == 0.7  # not 0.7000000000000001
    assert five[0][1:5] == [58757.6, 60010.0, 58700.0, 60000.0]


def test_the_quote_is_rounded_to_the_instrument_precisions(db: Any, client: FlaskClient) -> None:
    _btc(db)
    response = client.get("/api/v1/market/instruments/BTC-USD/quote")
    assert response.status_code == 200
    assert not NOISE.search(response.data), response.data
    assert response.json == {
        "symbol": "BTC-USD",
        "price": 60000.0,
        "ts": T0 + 5 * MINUTE,
        "change_24h": 1242.4,  # price precision
        "change_24h_pct": 2.11,  # hundredths of a percent
        "high_24h": 60010.0,
        "low_24h": 58700.0,
        "volume_24h": 0.7,  # size precision
    }


def test_candles_are_rounded_in_the_response_and_in_its_cached_copy(
    db: Any, client: FlaskClient
) -> None:
    _btc(db)
    url = (
        f"/api/v1/market/instruments/BTC-USD/candles?timeframe=1m&start={T0}&end={T0 + 5 * MINUTE}"
    )
    first = client.get(url)
    again = client.get(url)  # the closed window's cached bytes (the fast path)
    assert first.status_code == again.status_code == 200
    assert again.data == first.data
    rows = orjson.loads(first.data)["rows"]
    assert rows[1] == [T0 + MINUTE, 58790.0, 59900.12, 58780.0, 59800.0, 0.2]
    assert [r[5] for r in rows] == [0.1, 0.2, 0.1, 0.2, 0.1]
    five = client.get(url.replace("timeframe=1m", "timeframe=5m")).json["rows"]
    assert five == [[T0, 58757.6, 60010.0, 58700.0, 60000.0, 0.7]]


def test_a_response_cached_before_rounding_is_not_served(
    db: Any, client: FlaskClient, redis: Redis
) -> None:
    _btc(db)
    url = (
        f"/api/v1/market/instruments/BTC-USD/candles?timeframe=5m&start={T0}&end={T0 + 5 * MINUTE}"
    )
    assert client.get(url).status_code == 200
    generation = redis.get(generation_key("BTC-USD"))
    assert generation is not None
    # A copy from before the deploy: same window and generation, the old key, a noisy body.
    old_key = f"mkt:resp:BTC-USD:5m:{T0}:{T0 + 5 * MINUTE}:500"
    noisy = b'{"symbol":"BTC-USD","timeframe":"5m","rows":[[0,1,1,1,1,0.7000000000000001]]}'
    redis.set(old_key, generation + f"\n{int(time.time()) + 3600}\netag\n".encode() + noisy)
    for key in redis.scan_iter("mkt:resp:*"):
        if key != old_key.encode():
            redis.delete(key)
    forget_process_responses()
    rows = client.get(url).json["rows"]
    assert rows == [[T0, 58757.6, 60010.0, 58700.0, 60000.0, 0.7]]
