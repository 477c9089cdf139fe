"""The tick job: advance a batch of live runs to a closed candle (load -> engine -> persist).

Each run is ticked in its own savepoint: one bot that fails (bad data, a bug, a broken
spec) has its failure counted and its error recorded, and the others still commit. The
batch commits once. A run whose ``last_candle_ts`` already reaches the candle is left
alone, so a tick delivered twice changes nothing. See docs/execution.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import structlog
from flask import current_app

from engine.broker import BrokerState, validate_risk
from engine.candles import Candles
from engine.simulator import simulate
from engine.strategies import validate_strategy
from models.bot_runs import BotRun, broker_config
from models.bot_ticks import lock_running_run, record_tick_failure, run_span, save_tick
from models.bots import Bot
from models.candles import read_candles
from models.db import session as db

log = structlog.get_logger(__name__)


def _tick_run(run: BotRun, candle_ts: int) -> bool:
    """Simulate the run's candles after ``last_candle_ts`` up to ``candle_ts``; False if none."""
    bot = db.get(Bot, run.bot_id)
    if bot is None:  # the cascade removes runs with their bot; only a race gets here
        return False
    strategy = validate_strategy(bot.strategy)
    anchor, trade_from = run_span(run, bot.timeframe, strategy.warmup)
    rows = read_candles(bot.instrument_id, bot.timeframe, anchor, candle_ts + 1, limit=10**8)
    candles = Candles.from_rows(rows) if rows else Candles.empty()
    done = trade_from - 1 if run.last_candle_ts is None else run.last_candle_ts
    first = int(np.searchsorted(candles.ts, done, side="right"))
    if first >= len(candles):
        return False  # nothing new (already ticked, or the candle is not stored yet)
    # Signals over the whole series from the fixed anchor, exactly as a backtest computes them.
    signals = strategy.signals(candles).slice(first, len(candles))
    new = Candles(
        candles.ts[first:],
        candles.open[first:],
        candles.high[first:],
        candles.low[first:],
        candles.close[first:],
        candles.volume[first:],
    )
    state = BrokerState.from_dict(run.broker_state)
    sim = simulate(new, signals, validate_risk(bot.risk), broker_config(bot), state)
    save_tick(
        run,
        trades=sim.trades.records(),
        equity_ts=sim.equity.ts.tolist(),
        equity=sim.equity.equity.tolist(),
        broker_state=sim.state.as_dict(),
        last_candle_ts=int(new.ts[-1]),
    )
    return True


def tick_bots(run_ids: list[str], candle_ts: int) -> dict[str, list[str]]:
    """Tick each running run of the batch up to the candle opening at ``candle_ts`` (ms).

    Returns the run ids by outcome: ``ticked``, ``skipped`` (not running, or nothing new)
    and ``failed`` (counted in ``consecutive_failures``, reason in ``error``). A run that
    fails ``BOT_MAX_FAILURES`` times in a row moves to ``error`` with its bot.
    """
    max_failures = current_app.extensions["botyard.settings"].bot_max_failures
    outcome: dict[str, list[str]] = {"ticked": [], "skipped": [], "failed": []}
    for run_id in run_ids:
        key = uuid.UUID(run_id)
        try:
            with db.begin_nested():
                run = lock_running_run(key)
                ticked = run is not None and _tick_run(run, candle_ts)
        except Exception as exc:
            log.exception("bot_tick_failed", run_id=run_id, candle_ts=candle_ts)
            reason = f"{type(exc).__name__}: {exc}"
            if record_tick_failure(key, reason, max_failures, datetime.now(UTC), candle_ts):
                log.warning("bot_run_errored", run_id=run_id, failures=max_failures, error=reason)
            outcome["failed"].append(run_id)
            continue
        outcome["ticked" if ticked else "skipped"].append(run_id)
    db.commit()
    log.info("bots_ticked", candle_ts=candle_ts, **{k: len(v) for k, v in outcome.items()})
    return outcome
