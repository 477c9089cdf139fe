"""The tick job: advance a batch of live runs to a closed candle (load -> engine -> persist).

A batch is ticked in three phases, so its cost is a few queries however many runs it holds:

1. **Load**: lock the batch's running runs in one query (id order, so two jobs never
   deadlock) and read each instrument and timeframe's candles once.
2. **Engine**: advance each run in memory (``engine.live.advance``). An exception here is
   that bot's failure, counted against it; the others go on.
3. **Persist**: write every run's trades, equity, state and logs in bulk inside a
   savepoint. If that fails, each run is written in a savepoint of its own, so only the
   run whose rows the database refuses fails.

The batch commits once. Transient errors (the database or Redis going away, a deadlock,
the job's timeout) are not a bot's fault: they fail the job, which RQ retries with
backoff, and nothing is counted. A run that reaches ``BOT_MAX_FAILURES`` moves to
``error`` in a transaction of its own after the commit. See docs/execution.md.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import structlog
from flask import current_app
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.timeouts import BaseTimeoutException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from engine.broker import BrokerState, validate_risk
from engine.candles import Candles
from engine.live import SignalsOf, advance
from engine.signals import Signals
from engine.strategies import Strategy, validate_strategy
from models.bot_runs import BotRun, broker_config
from models.bot_ticks import (
    Tick,
    count_failures,
    lock_running_runs,
    move_to_error,
    save_ticks,
    span_of,
)
from models.bots import Bot
from models.candles import read_candles
from models.db import session as db

log = structlog.get_logger(__name__)

TRANSIENT = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    BaseTimeoutException,
)


def is_transient(exc: BaseException) -> bool:
    """True for errors that are not the bot's fault and should fail the job, to be retried."""
    if isinstance(exc, TRANSIENT):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class Batch:
    """What one tick job works on: its locked runs, their candles, and shared computations."""

    candle_ts: int
    fresh_bars: int
    epoch_bars: int
    candles: dict[tuple[int, str], Candles]
    strategies: dict[bytes, Strategy]
    signals: dict[tuple[Any, ...], Signals]

    def strategy(self, spec: dict[str, Any]) -> Strategy:
        """The validated strategy of a spec, parsed once per batch."""
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        if key not in self.strategies:
            self.strategies[key] = validate_strategy(spec)
        return self.strategies[key]

    def signals_of(self, strategy: Strategy, pair: tuple[int, str]) -> SignalsOf:
        """Signals over a slice of the pair's candles, shared by runs with one spec and span."""
        candles = self.candles[pair]
        spec = orjson.dumps(strategy.spec, option=orjson.OPT_SORT_KEYS)

        def compute(start: int, stop: int) -> Signals:
            key = (spec, pair, int(candles.ts[start]), int(candles.ts[stop - 1]))
            if key not in self.signals:
                self.signals[key] = strategy.signals(candles.slice(start, stop))
            return self.signals[key]

        return compute


def _load_candles(pairs: dict[tuple[int, str], int], candle_ts: int) -> dict[Any, Candles]:
    """Each (instrument, timeframe)'s candles from the oldest bar its runs need to the target."""
    loaded = {}
    for (instrument_id, timeframe), start in pairs.items():
        rows = read_candles(instrument_id, timeframe, start, candle_ts + 1, limit=10**8)
        loaded[(instrument_id, timeframe)] = Candles.from_rows(rows) if rows else Candles.empty()
    return loaded


def _advance(batch: Batch, run: BotRun, bot: Bot) -> Tick | None:
    """Run the engine for one run; None when it has no new candle. Touches no database."""
    strategy = batch.strategy(bot.strategy)
    pair = (bot.instrument_id, bot.timeframe)
    sim = advance(
        batch.candles[pair],
        batch.signals_of(strategy, pair),
        span_of(run, bot.timeframe, strategy.warmup, batch.epoch_bars),
        risk=validate_risk(bot.risk),
        config=broker_config(bot),
        state=BrokerState.from_dict(run.broker_state),
        last_done=run.last_candle_ts,
        target=batch.candle_ts,
        fresh_bars=batch.fresh_bars,
    )
    if sim is None:
        return None
    return Tick(
        run=run,
        trades=sim.trades.records(),
        equity_ts=sim.equity.ts.tolist(),
        equity=sim.equity.equity.tolist(),
        broker_state=sim.state.as_dict(),
        last_candle_ts=int(sim.equity.ts[-1]),
    )


def _guarded(action: Callable[[], Any]) -> str | None:
    """Run ``action``; the reason it failed as a bot's failure, or None. Transient errors raise."""
    try:
        action()
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("bot_tick_failed")
        return f"{type(exc).__name__}: {exc}"
    return None


def _persist(ticks: list[Tick], failed: dict[uuid.UUID, str]) -> list[Tick]:
    """Write every tick in bulk; if the database refuses, one savepoint per run. Returns saved."""

    def bulk() -> None:
        with db.begin_nested():
            save_ticks(ticks)

    if not ticks or _guarded(bulk) is None:
        return ticks
    saved = []
    for tick in ticks:

        def one(tick: Tick = tick) -> None:
            with db.begin_nested():
                save_ticks([tick])

        reason = _guarded(one)
        if reason is None:
            saved.append(tick)
        else:
            failed[tick.run.id] = reason
    return saved


def tick_bots(
    run_ids: list[str], candle_ts: int, fresh_bars: int | None = None
) -> dict[str, list[str]]:
    """Tick each running run of the batch up to the candle opening at ``candle_ts`` (ms).

    ``fresh_bars`` (default ``BOT_FRESH_BARS``) is how many bars up to the target a run may
    trade on; older bars of a catch-up only record equity. Returns the run ids by outcome:
    ``ticked``, ``skipped`` (not running, or nothing new) and ``failed`` (counted in
    ``consecutive_failures``, reason in ``error``).
    """
    settings = current_app.extensions["botyard.settings"]
    keys = [uuid.UUID(run_id) for run_id in run_ids]
    locked = lock_running_runs(keys)
    batch = Batch(
        candle_ts=candle_ts,
        fresh_bars=settings.bot_fresh_bars if fresh_bars is None else fresh_bars,
        epoch_bars=settings.bot_epoch_bars,
        candles={},
        strategies={},
        signals={},
    )
    failed: dict[uuid.UUID, str] = {}
    oldest: dict[tuple[int, str], int] = defaultdict(lambda: candle_ts)
    for run, bot in locked:
        reason = _guarded(partial(_need, batch, run, bot, oldest))
        if reason is not None:
            failed[run.id] = reason
    batch.candles = _load_candles(dict(oldest), candle_ts)
    ticks: list[Tick] = []
    for run, bot in locked:
        if run.id in failed:
            continue
        reason = _guarded(partial(_collect, batch, run, bot, ticks))
        if reason is not None:
            failed[run.id] = reason
    saved = _persist(ticks, failed)
    errored = count_failures(failed, settings.bot_max_failures, candle_ts)
    db.commit()
    for key in errored:
        if move_to_error(key, settings.bot_max_failures, datetime.now(UTC), candle_ts):
            log.warning("bot_run_errored", run_id=str(key), error=failed[key])
        db.commit()
    ticked = {tick.run.id for tick in saved}
    outcome: dict[str, list[str]] = {"ticked": [], "skipped": [], "failed": []}
    for key, run_id in zip(keys, run_ids, strict=True):
        state = "failed" if key in failed else "ticked" if key in ticked else "skipped"
        outcome[state].append(run_id)
    log.info("bots_ticked", candle_ts=candle_ts, **{k: len(v) for k, v in outcome.items()})
    return outcome


def _need(
    batch: Batch,
    run: BotRun,
    bot: Bot,
    oldest: dict[tuple[int, str], int],
) -> None:
    """Note the oldest candle this run needs from its instrument and timeframe."""
    span = span_of(run, bot.timeframe, batch.strategy(bot.strategy).warmup, batch.epoch_bars)
    pair = (bot.instrument_id, bot.timeframe)
    oldest[pair] = min(oldest[pair], span.first_needed(run.last_candle_ts))


def _collect(batch: Batch, run: BotRun, bot: Bot, ticks: list[Tick]) -> None:
    tick = _advance(batch, run, bot)
    if tick is not None:
        ticks.append(tick)
