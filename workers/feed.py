"""The market-data feed process: ``python -m workers.feed``.

With the synthetic provider it publishes a quote per instrument every (simulated)
second and closes a 1m candle every (simulated) minute. ``FEED_SPEED`` makes the
simulated clock run faster than the wall clock for demos and tests.

For each closed candle, in order: upsert the 1m row and its derived buckets in
Postgres (idempotent), rewrite the cached chunks, ``XADD`` a ``candle`` entry to
the symbol's capped stream, and ``XADD`` one "candle closed" event per minute to
``mkt:events:candle_closed`` for the bot dispatcher. Stream ids come from the
simulated clock, so announcing the same candle twice leaves one entry. On start the feed first
backfills every minute it missed, so restarts leave no gap and no duplicate.

Redis or Postgres away: the feed waits with backoff (workers/outage.py) and closes the
minutes it could not close, in order, once both answer again; its streams, recreated by
the next ``XADD`` after a flush, carry on from the simulated clock.
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from engine.providers.base import InstrumentSpec
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.db import session as db
from models.market.cache import CandleCache, store_quote, stream_key
from models.market.candles import (
    Quote,
    last_candle_ms,
    quote_from_candles,
    read_candles,
    round_rows,
)
from models.market.data import MINUTE_MS, fill_gap, load_history
from models.market.instruments import sync_instruments
from models.market.tables import TIMEFRAME_MS, Instrument
from settings import Settings
from workers.context import create_worker_app
from workers.outage import Backoff, ServiceWatch, end_transaction, until_available
from workers.queues import redis_connection
from workers.transient import backing_service

log = structlog.get_logger(__name__)

STREAM_MAXLEN = 10_000
CANDLE_CLOSED_STREAM = "mkt:events:candle_closed"
CANDLE_CLOSED_MAXLEN = 100_000


@dataclass
class Tracked:
    """One instrument the feed publishes, with its rolling 24h figures."""

    instrument: Instrument
    spec: InstrumentSpec
    day: dict[str, float] = field(default_factory=dict)


class Feed:
    """Publishes quotes and closes candles for a set of instruments."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.provider = SyntheticProvider()
        self.cache = CandleCache(redis)
        instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider=self.provider.name)
        db.commit()
        by_symbol = {spec.symbol: spec for spec in SYNTHETIC_INSTRUMENTS}
        self.tracked = [Tracked(inst, by_symbol[inst.symbol]) for inst in instruments]

    def backfill(self, now_ms: int) -> dict[str, int]:
        """Store every minute missed up to the last closed one, then refresh 24h figures."""
        pairs = [(t.instrument, t.spec) for t in self.tracked]
        loaded = fill_gap(self.provider, pairs, now_ms, self.settings.seed_history_days)
        for tracked in self.tracked:
            self._refresh_day(tracked)
        return loaded

    def newest_end(self) -> int:
        """End of the newest stored 1m candle of any instrument (0 when there is none)."""
        ends = [last_candle_ms(t.instrument.id, "1m") for t in self.tracked]
        db.rollback()
        return max((e + MINUTE_MS for e in ends if e is not None), default=0)

    def _refresh_day(self, tracked: Tracked) -> None:
        quote = quote_from_candles(tracked.instrument)
        db.rollback()
        if quote is not None:
            tracked.day = {
                "open": quote.open_24h,
                "high": quote.high_24h,
                "low": quote.low_24h,
                "volume": quote.volume_24h,
            }

    def publish_quotes(self, sim_ms: int) -> None:
        """Publish every instrument's price for the simulated second ``sim_ms``."""
        minute = sim_ms // MINUTE_MS * MINUTE_MS
        second = (sim_ms - minute) // 1000
        pipe = self.redis.pipeline(transaction=False)
        for tracked in self.tracked:
            price = float(self.provider.quotes(tracked.spec, minute)[second])
            day = tracked.day or {"open": price, "high": price, "low": price, "volume": 0.0}
            quote = Quote(
                symbol=tracked.spec.symbol,
                price=price,
                ts_ms=sim_ms,
                open_24h=day["open"],
                high_24h=max(day["high"], price),
                low_24h=min(day["low"], price),
                volume_24h=day["volume"],
                price_precision=tracked.spec.price_precision,
                size_precision=tracked.spec.size_precision,
            )
            data = store_quote(pipe, tracked.spec.symbol, quote.as_dict())
            pipe.xadd(
                stream_key(tracked.spec.symbol),
                {"type": "quote", "data": data},
                id=quote_entry_id(sim_ms),
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
        execute_once(pipe)

    def close_minute(self, minute_ms: int) -> None:
        """Persist, cache and announce the 1m candle opening at ``minute_ms`` (idempotent)."""
        end = minute_ms + MINUTE_MS
        for tracked in self.tracked:
            load_history(self.provider, tracked.instrument, tracked.spec, minute_ms, end)
        db.commit()
        pipe = self.redis.pipeline(transaction=False)
        announced: list[str] = []
        closed: set[str] = set()
        for tracked in self.tracked:
            closed_here = self._update_cache(tracked, minute_ms, pipe)
            if closed_here:
                announced.append(tracked.instrument.symbol)
                closed.update(closed_here)
        db.rollback()
        if announced:
            # Every timeframe any instrument closed this minute, not the last one's: the
            # dispatcher ticks runs on (symbol in symbols, timeframe in timeframes).
            timeframes = [tf for tf in TIMEFRAME_MS if tf in closed]
            event = {"ts": minute_ms, "symbols": announced, "timeframes": timeframes}
            pipe.xadd(
                CANDLE_CLOSED_STREAM,
                {"data": orjson.dumps(event)},
                id=candle_entry_id(minute_ms),
                maxlen=CANDLE_CLOSED_MAXLEN,
                approximate=True,
            )
        execute_once(pipe)
        for tracked in self.tracked:
            self._refresh_day(tracked)

    def _update_cache(self, tracked: Tracked, minute_ms: int, pipe: Any) -> list[str]:
        """Rewrite the cached buckets this minute touched; queue its stream entry on ``pipe``.

        Returns the timeframes whose bucket this minute completed (empty when the 1m
        candle is missing, which only happens if the provider had no data for it).
        """
        symbol = tracked.instrument.symbol
        closed: list[str] = []
        one_minute: list[float] | None = None
        for tf in tracked.instrument.timeframes():
            tf_ms = TIMEFRAME_MS[tf]
            bucket = minute_ms // tf_ms * tf_ms
            rows = read_candles(tracked.instrument.id, tf, bucket, bucket + tf_ms, 1)
            if not rows:
                continue
            self.cache.put_closed_candle(symbol, tf, tf_ms, rows[0])
            if minute_ms + MINUTE_MS == bucket + tf_ms:
                closed.append(tf)  # this minute completes the bucket
            if tf == "1m":
                one_minute = rows[0]
        if one_minute is None:
            return []
        spec = tracked.spec
        one_minute = round_rows([one_minute], spec.price_precision, spec.size_precision)[0]
        pipe.xadd(
            stream_key(symbol),
            {
                "type": "candle",
                "data": orjson.dumps({"symbol": symbol, "timeframe": "1m", "row": one_minute}),
            },
            id=candle_entry_id(minute_ms),
            maxlen=STREAM_MAXLEN,
            approximate=True,
        )
        return closed


def candle_entry_id(minute_ms: int) -> str:
    """Stream id of the candle opening at ``minute_ms``: its close time, sequence 0.

    Ids come from the simulated clock, not Redis's, so re-announcing a candle (a
    restart, a retried close) is refused by Redis instead of duplicated.
    """
    return f"{minute_ms + MINUTE_MS}-0"


def quote_entry_id(sim_ms: int) -> str:
    """Stream id of the quote for second ``sim_ms`` (sequence 1: after a candle closing then)."""
    return f"{sim_ms}-1"


def execute_once(pipe: Any) -> None:
    """Run a pipeline, ignoring XADDs refused because that entry was already written."""
    for result in pipe.execute(raise_on_error=False):
        if isinstance(result, ResponseError) and "equal or smaller" not in str(result):
            raise result


class SimulatedClock:
    """Wall time scaled by ``speed`` from an anchor: sim = anchor + (wall - wall0) * speed."""

    def __init__(self, anchor_ms: int, speed: float) -> None:
        self.anchor_ms = anchor_ms
        self.speed = speed
        self.wall0 = time.monotonic()

    def now_ms(self) -> int:
        """The current simulated time."""
        return self.anchor_ms + int((time.monotonic() - self.wall0) * 1000 * self.speed)

    def wait(self, sim_ms: int) -> None:
        """Let about ``sim_ms`` simulated milliseconds pass (at most 0.2 s of wall time)."""
        time.sleep(min(0.2, sim_ms / 1000 / self.speed))


def run(
    feed: Feed,
    speed: float,
    stop: list[bool],
    watch: ServiceWatch | None = None,
    clock_type: type[SimulatedClock] = SimulatedClock,
) -> None:
    """Backfill, then publish quotes each simulated second and close candles each minute.

    ``clock_type`` lets a test drive the loop with a clock of its own.
    """
    watch = watch or ServiceWatch("feed")
    wall_ms = int(time.time() * 1000)
    if not until_available(lambda: feed.backfill(wall_ms), watch, stop):
        return
    # A fast clock may have stored minutes ahead of the wall clock: continue after them.
    anchor = max(wall_ms, until_available(feed.newest_end, watch, stop) or 0)
    clock = clock_type(anchor, speed)
    next_second = anchor // 1000 * 1000 + 1000
    last_closed = anchor // MINUTE_MS * MINUTE_MS
    errors = Backoff()
    while not stop[0]:
        now = clock.now_ms()
        if now < next_second:
            clock.wait(next_second - now)
            continue
        try:
            while last_closed + MINUTE_MS <= now:
                feed.close_minute(last_closed)
                last_closed += MINUTE_MS
            feed.publish_quotes(min(now, last_closed + MINUTE_MS - 1) // 1000 * 1000)
        except Exception as exc:
            if backing_service(exc) is None and not isinstance(exc, RedisError):
                raise
            end_transaction()
            if backing_service(exc) is not None:
                watch.pause(exc, stop=lambda: stop[0])
            else:
                log.warning("feed_redis_error", error_type=type(exc).__name__)
                time.sleep(errors.next())
            continue
        watch.recovered()
        errors.reset()
        next_second = now // 1000 * 1000 + 1000


def main() -> int:
    """Entry point of the ``feed`` Procfile process."""
    app = create_worker_app()
    settings: Settings = app.extensions["botyard.settings"]
    stop = [False]

    def request_stop(*_args: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with app.app_context():
        watch = ServiceWatch("feed")
        feed = until_available(lambda: Feed(redis_connection(settings), settings), watch, stop)
        if feed is not None:
            log.info("feed_starting", instruments=len(feed.tracked), speed=settings.feed_speed)
            run(feed, settings.feed_speed, stop, watch)
    log.info("feed_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
