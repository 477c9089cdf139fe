"""Backtest <-> live reconciliation: replay a live run through the backtester and diff the two.

The replay uses what the run used (docs/reconciliation.md): the bot's strategy and risk
(trading fields are frozen while a run is live), the costs of ``models.bots.runs`` with the
run's own initial capital, the candles stored now, and the run's anchors: it trades from
the run's first bar (``trade_from``), and each bar's signals are computed from the anchor
of the bar's epoch, exactly as the live tick computes them (``engine.live``). Every bar
is fresh in a replay, as in a backtest, so a live catch-up that dropped stale signals
shows as a difference. The replay always starts at the run's start, the only state known
for sure; a period only restricts what is compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.backtest import ENGINE_VERSION, backtest_signals, candles_fingerprint
from engine.broker import BrokerState, validate_risk
from engine.candles import Candles
from engine.live import RunSpan, SignalsOf, epoch_signals, new_bars
from engine.reconcile import diff_trades, equity_distance
from engine.signals import Signals
from engine.strategies import Strategy, validate_strategy
from models.bots.bots import Bot
from models.bots.runs import BotRun, config_from, costs_of
from models.bots.ticks import run_equity, run_trades, span_of
from models.market.candles import read_candles
from models.performance.tables import PERIOD_DAYS
from models.trades import TRADE_COLUMNS

DAY_MS = 86_400_000
# The report lists at most this many differing trades (the counts cover them all).
REPORT_TRADES = 100


def window_start(period: str, last_ts: int | None) -> int | None:
    """First bar time (ms) a period compares: the last N UTC days ending with ``last_ts``'s day.

    None for ``all`` (or a run without bars): everything is compared.
    """
    days = PERIOD_DAYS[period]
    if days is None or last_ts is None:
        return None
    return (last_ts // DAY_MS - days + 1) * DAY_MS


@dataclass(frozen=True)
class Replay:
    """The backtest of a run's bars: its trades, equity and final state, and what it read."""

    span: RunSpan
    warmup: int
    bars: int
    trades: list[dict[str, Any]]
    equity_ts: np.ndarray
    equity: np.ndarray
    state: dict[str, Any]
    fingerprint: str


def _signals_of(strategy: Strategy, candles: Candles) -> SignalsOf:
    def compute(start: int, first: int, stop: int) -> Signals:
        return strategy.signals(candles.slice(start, stop)).slice(first - start, stop - start)

    return compute


def replay_run(run: BotRun, bot: Bot, epoch_bars: int) -> Replay:
    """Backtest the run's bars, from its first bar to its last candle, as the live path would.

    Raises the engine's ParamError / RuleError for a spec the engine refuses.
    """
    strategy = validate_strategy(bot.strategy)
    risk = validate_risk(bot.risk)
    config = config_from((run.initial_capital, *costs_of(bot)[1:]))
    span = span_of(run.started_at, bot.timeframe, strategy.warmup, epoch_bars)
    last = run.last_candle_ts
    empty = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    fresh = BrokerState.start(config).as_dict()  # a run with no bar yet holds its start
    if last is None:
        return Replay(span, strategy.warmup, 0, [], *empty, fresh, "")
    rows = read_candles(bot.instrument_id, bot.timeframe, span.first_needed(None), last + 1, 10**8)
    candles = Candles.from_rows(rows) if rows else Candles.empty()
    bars = new_bars(candles, span, None, last)
    fingerprint = candles_fingerprint(candles)
    if not bars:
        return Replay(span, strategy.warmup, 0, [], *empty, fresh, fingerprint)
    signals = epoch_signals(candles, bars, span, _signals_of(strategy, candles))
    part = candles.slice(bars.start, bars.stop)
    result = backtest_signals(part, signals, risk, config, spec=strategy.spec)
    return Replay(
        span=span,
        warmup=strategy.warmup,
        bars=len(part),
        trades=result.trades.records(),
        equity_ts=result.equity.ts,
        equity=result.equity.equity,
        state=result.state.as_dict(),
        fingerprint=fingerprint,
    )


def _live(run: BotRun) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    trades = [{k: getattr(t, k) for k in TRADE_COLUMNS} for t in run_trades(run.id)]
    points = run_equity(run.id)
    ts = np.array([p[0] for p in points], dtype=np.int64)
    equity = np.array([p[1] for p in points], dtype=np.float64)
    return trades, ts, equity


def reconcile(
    run: BotRun, bot: Bot, period: str, epoch_bars: int, threshold: float
) -> dict[str, Any]:
    """The reconciliation row's values for ``run`` over ``period`` (see RunReconciliation).

    ``threshold`` is a fraction of the run's initial capital: an equity distance above it,
    or any missing or extra trade, marks the report ``diverged``.
    """
    replay = replay_run(run, bot, epoch_bars)
    trades, ts, equity = _live(run)
    start = window_start(period, run.last_candle_ts)
    backtest_trades, bt_ts, bt_equity = replay.trades, replay.equity_ts, replay.equity
    if start is not None:
        trades = [t for t in trades if int(t["exit_ts"]) >= start]
        backtest_trades = [t for t in backtest_trades if int(t["exit_ts"]) >= start]
        keep, bt_keep = ts >= start, bt_ts >= start
        ts, equity, bt_ts, bt_equity = ts[keep], equity[keep], bt_ts[bt_keep], bt_equity[bt_keep]
    diff = diff_trades(trades, backtest_trades, TRADE_COLUMNS)
    distance = equity_distance(ts, equity, bt_ts, bt_equity)
    limit = threshold * run.initial_capital
    diverged = bool(diff.missing or diff.extra or distance.max_abs_diff > limit)
    report = {
        "window": {"period": period, "start_ts": start, "end_ts": run.last_candle_ts},
        "replay": {
            "anchor_ts": replay.span.first_needed(None),
            "trade_from_ts": replay.span.trade_from,
            "epoch_bars": epoch_bars,
            "warmup": replay.warmup,
            "bars": replay.bars,
            "candles_fingerprint": replay.fingerprint,
            "engine_version": ENGINE_VERSION,
            "final_state_equal": replay.state == run.broker_state,
        },
        "trades": {"run": len(trades), "backtest": len(backtest_trades)},
        "equity": {
            "bars_compared": distance.compared,
            "run_only_bars": distance.run_only,
            "backtest_only_bars": distance.backtest_only,
            "max_abs_diff_ts": distance.max_abs_diff_ts,
            "run_final": distance.run_final,
            "backtest_final": distance.backtest_final,
        },
        "threshold": {"fraction": threshold, "equity_abs": limit},
        "differences_total": len(diff.differences),
        "differences": diff.differences[:REPORT_TRADES],
    }
    return {
        "as_of_ts": run.last_candle_ts,
        "matched": diff.matched,
        "missing": diff.missing,
        "extra": diff.extra,
        "max_price_diff": diff.max_price_diff,
        "max_size_diff": diff.max_size_diff,
        "equity_max_abs_diff": distance.max_abs_diff,
        "equity_mean_abs_diff": distance.mean_abs_diff,
        "equity_final_diff": distance.final_diff,
        "diverged": diverged,
        "report": report,
    }
