"""The feed process: closing candles is idempotent, restarts backfill without gaps or doubles."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import text

from engine.candles import Candles
from engine.providers.base import InstrumentSpec
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.market.cache import CandleCache, cached_quote, stream_key
from models.market.candles import read_candles
from models.market.data import load_history
from tests.helpers import assert_rows_close
from workers.feed import CANDLE_CLOSED_STREAM, Feed, SimulatedClock, run

MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def feed(app: Flask, db: Any, redis: Redis) -> Feed:
    settings = app.extensions["botyard.settings"].replace(seed_history_days=0)
    return Feed(redis, settings)


def _spec(symbol: str) -> Any:
    return next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == symbol)


def _count(db: Any, timeframe: str) -> int:
    return int(
        db.scalar(text("SELECT count(*) FROM candles WHERE timeframe = :tf"), {"tf": timeframe})
    )


def test_closing_a_minute_twice_stores_and_announces_it_once(
    feed: Feed, db: Any, redis: Redis
) -> None:
    minute = T0 + 4 * MINUTE  # completes the 5m bucket that opened at T0
    feed.close_minute(minute)
    feed.close_minute(minute)

    assert _count(db, "1m") == len(feed.tracked)
    btc = next(t.instrument for t in feed.tracked if t.instrument.symbol == "BTC-USD")
    expected = SyntheticProvider().candles(_spec("BTC-USD"), minute, minute + MINUTE).to_rows()
    assert_rows_close(read_candles(btc.id, "1m", minute, minute + MINUTE, 10), expected)

    entries = redis.xrange(stream_key("BTC-USD"))
    assert [e[0] for e in entries] == [f"{minute + MINUTE}-0".encode()]
    fields = {k.decode(): v for k, v in entries[0][1].items()}
    assert fields["type"] == b"candle"
    assert orjson.loads(fields["data"])["row"] == pytest.approx(expected[0])

    events = redis.xrange(CANDLE_CLOSED_STREAM)
    assert len(events) == 1
    event = orjson.loads(events[0][1][b"data"])
    assert event["ts"] == minute
    assert event["timeframes"] == ["1m", "5m"]
    assert set(event["symbols"]) == {t.instrument.symbol for t in feed.tracked}


class ProviderWithGap(SyntheticProvider):
    """The synthetic provider, except that one symbol has no data at all."""

    def __init__(self, silent: str) -> None:
        super().__init__()
        self.silent = silent

    def candles(self, spec: InstrumentSpec, start_ms: int, end_ms: int) -> Candles:
        if spec.symbol == self.silent:
            return Candles.empty()
        return super().candles(spec, start_ms, end_ms)


def test_the_closed_event_carries_every_timeframe_whatever_the_last_instrument_closed(
    feed: Feed, redis: Redis
) -> None:
    # The last instrument the feed walks has no candle this minute: the event must still
    # carry the timeframes the others closed (it used to carry the last one's, i.e. none).
    last = feed.tracked[-1].instrument.symbol
    feed.provider = ProviderWithGap(silent=last)
    minute = T0 + 14 * MINUTE  # completes the 5m and 15m buckets
    feed.close_minute(minute)

    events = redis.xrange(CANDLE_CLOSED_STREAM)
    assert len(events) == 1
    event = orjson.loads(events[0][1][b"data"])
    assert event["timeframes"] == ["1m", "5m", "15m"]
    others = {t.instrument.symbol for t in feed.tracked} - {last}
    assert set(event["symbols"]) == others


class NoisyProvider(SyntheticProvider):
    """Synthetic candles whose highs carry more decimals than the instrument's (like an import)."""

    def candles(self, spec: InstrumentSpec, start_ms: int, end_ms: int) -> Candles:
        c = super().candles(spec, start_ms, end_ms)
        volume = np.resize([0.1, 0.2], len(c.ts))
        return Candles(c.ts, c.open, c.high + 0.000123, c.low, c.close, volume)


def test_quotes_and_stream_candles_are_rounded_to_the_instrument_precisions(
    feed: Feed, db: Any, redis: Redis
) -> None:
    btc = next(t for t in feed.tracked if t.instrument.symbol == "BTC-USD")  # 2 and 6 decimals
    price = float(SyntheticProvider().quotes(btc.spec, T0)[5])
    btc.day = {"open": price - 1242.4, "high": price + 0.123456, "low": price, "volume": 0.1 + 0.2}
    feed.publish_quotes(T0 + 5_000)
    quote = orjson.loads(cached_quote(redis, "BTC-USD") or b"{}")
    assert quote["price"] == price
    assert quote["change_24h"] == 1242.4
    assert quote["change_24h_pct"] == round(1242.4 / (price - 1242.4) * 100, 2)
    assert quote["high_24h"] == round(price + 0.12, 2)
    assert quote["volume_24h"] == 0.3
    entry = redis.xrange(stream_key("BTC-USD"))[-1][1]
    assert orjson.loads(entry[b"data"]) == quote  # the stream's quote event is the same body

    feed.provider = NoisyProvider()
    minute = T0 + 4 * MINUTE
    feed.close_minute(minute)
    candle = orjson.loads(
        redis.xrange(stream_key("BTC-USD"), min=f"{minute + MINUTE}-0")[0][1][b"data"]
    )
    stored = read_candles(btc.instrument.id, "1m", minute, minute + MINUTE, 1)[0]
    assert candle["row"] == [minute, stored[1], round(stored[2], 2), stored[3], stored[4], 0.1]
    assert candle["row"][2] != stored[2]  # the stored high had more decimals than served


def test_restart_backfills_the_missed_minutes_without_gaps_or_duplicates(
    feed: Feed, db: Any
) -> None:
    provider = SyntheticProvider()
    for tracked in feed.tracked:
        load_history(provider, tracked.instrument, tracked.spec, T0 - 120 * MINUTE, T0)
    db.commit()

    # The feed was down for 17.5 minutes: it stores the 17 closed ones, not the forming one.
    loaded = feed.backfill(T0 + 17 * MINUTE + 30_000)
    assert set(loaded.values()) == {17}
    assert feed.backfill(T0 + 17 * MINUTE + 59_000) == dict.fromkeys(loaded, 0)

    eth = next(t.instrument for t in feed.tracked if t.instrument.symbol == "ETH-USD")
    stored = read_candles(eth.id, "1m", 0, 2 * T0, 10_000)
    assert [int(r[0]) for r in stored] == list(range(T0 - 120 * MINUTE, T0 + 17 * MINUTE, MINUTE))
    full = provider.candles(_spec("ETH-USD"), T0 - 120 * MINUTE, T0 + 17 * MINUTE).to_rows()
    assert_rows_close(stored, full)
    # The derived 15m bucket spanning the restart holds all of its minutes.
    bucket = read_candles(eth.id, "15m", T0, T0 + 15 * MINUTE, 1)[0]
    assert bucket[1] == pytest.approx(full[120][1]) and bucket[4] == pytest.approx(full[134][4])
    assert bucket[5] == pytest.approx(sum(r[5] for r in full[120:135]))


def test_a_closed_candle_updates_the_cached_window(feed: Feed, db: Any, redis: Redis) -> None:
    provider = SyntheticProvider()
    sol = next(t for t in feed.tracked if t.instrument.symbol == "SOL-USD")
    load_history(provider, sol.instrument, sol.spec, T0 - 10 * MINUTE, T0)
    db.commit()
    cache = CandleCache(redis)

    def window() -> list[list[float]]:
        return cache.window(
            "SOL-USD",
            "1m",
            timeframe_ms=MINUTE,
            start=T0 - 10 * MINUTE,
            end=T0 + MINUTE,
            limit=100,
            now_ms=T0,
            loader=lambda lo, hi: read_candles(sol.instrument.id, "1m", lo, hi, 10_000),
        )

    assert len(window()) == 10  # cached, with the forming minute still missing
    feed.close_minute(T0)
    rows = window()
    assert len(rows) == 11
    assert rows[-1] == pytest.approx(provider.candles(sol.spec, T0, T0 + MINUTE).to_rows()[0])


def test_the_loop_publishes_quotes_and_closes_candles_on_a_fast_clock(
    feed: Feed, db: Any, redis: Redis
) -> None:
    stop = [False]
    minutes_to_run = 3
    clocks: list[SimulatedClock] = []

    class SteppedClock(SimulatedClock):
        """Simulated time that moves only when the loop waits: no wall clock, no load."""

        def __init__(self, anchor_ms: int, speed: float) -> None:
            super().__init__(anchor_ms, speed)
            self.sim_ms = anchor_ms
            self.end_ms = (anchor_ms // MINUTE + minutes_to_run) * MINUTE
            clocks.append(self)

        def now_ms(self) -> int:
            return self.sim_ms

        def wait(self, sim_ms: int) -> None:
            self.sim_ms += sim_ms
            stop[0] = self.sim_ms > self.end_ms

    run(feed, speed=120.0, stop=stop, clock_type=SteppedClock)

    closed = redis.xrange(CANDLE_CLOSED_STREAM)
    assert len(closed) == minutes_to_run
    minutes = [orjson.loads(e[1][b"data"])["ts"] for e in closed]
    assert minutes == list(range(minutes[0], minutes[0] + len(minutes) * MINUTE, MINUTE))
    assert _count(db, "1m") == len(minutes) * len(feed.tracked)

    quote = orjson.loads(cached_quote(redis, "BTC-USD") or b"{}")
    assert quote["symbol"] == "BTC-USD" and quote["price"] > 0
    kinds = [e[1][b"type"] for e in redis.xrange(stream_key("BTC-USD"))]
    assert kinds.count(b"candle") == len(minutes)
    # One per simulated second, from the first whole second after the start to the end.
    [clock] = clocks
    first_second = clock.anchor_ms // 1000 * 1000 + 1000
    assert kinds.count(b"quote") == (clock.end_ms - first_second) // 1000 + 1
    ids = [e[0] for e in redis.xrange(stream_key("BTC-USD"))]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split(b"-")))
