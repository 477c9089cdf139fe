"""Backtests: strategy spec + candles + risk + costs -> trades, equity and metrics.

The fill model and stop rules are in :mod:`engine.simulator`; the run is simulated in
chunks of bars through the resumable broker state, which is how progress is reported
and how a cancelled job stops between chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.broker import BrokerConfig, BrokerState, Risk, validate_config, validate_risk
from engine.candles import Candles
from engine.ledger import EquityCurve, Fills, OpenPosition, Trades
from engine.metrics import METRICS_VERSION, Metrics, compute_metrics
from engine.signals import Signals
from engine.simulator import Simulation, simulate
from engine.strategies import Strategy, validate_strategy
from engine.version import ENGINE_VERSION

__all__ = [
    "ENGINE_VERSION",
    "METRICS_VERSION",
    "BacktestResult",
    "Cancelled",
    "backtest_signals",
    "candles_fingerprint",
    "run_backtest",
]

CHUNK_BARS = 250_000
# Progress reported once the signals, and then the whole simulation, are done.
SIGNALS_DONE = 0.2
SIMULATION_DONE = 0.95
Checkpoint = Callable[[float], bool]


class Cancelled(Exception):
    """The checkpoint callback returned False: the run stopped early."""


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Everything a backtest produced, with the versions that produced it.

    ``trades`` are the closed trades; ``open_position`` is the position still held after
    the last bar (marked at its close, no exit fee), or None. ``state`` resumes the run.
    """

    spec: dict[str, Any]
    risk: Risk
    config: BrokerConfig
    warmup: int
    trades: Trades
    fills: Fills
    open_position: OpenPosition | None
    equity: EquityCurve
    metrics: Metrics
    state: BrokerState
    engine_version: str = ENGINE_VERSION
    metrics_version: str = METRICS_VERSION


def _report(checkpoint: Checkpoint | None, progress: float) -> None:
    if checkpoint is not None and checkpoint(min(max(progress, 0.0), 1.0)) is False:
        raise Cancelled(f"cancelled at {progress:.0%}")


def backtest_signals(
    candles: Candles,
    signals: Signals,
    risk: Risk,
    config: BrokerConfig,
    *,
    checkpoint: Checkpoint | None = None,
    chunk_bars: int = CHUNK_BARS,
    spec: dict[str, Any] | None = None,
    warmup: int = 0,
) -> BacktestResult:
    """Backtest precomputed signals from a fresh account; see :func:`run_backtest`."""
    n, step = len(candles), max(chunk_bars, 1)
    state = BrokerState.start(config)
    parts: list[Simulation] = []
    for start in range(0, max(n, 1), step):
        stop = min(n, start + step)
        bars, part_signals = candles.slice(start, stop), signals.slice(start, stop)
        part = simulate(bars, part_signals, risk, config, state)
        parts.append(part)
        state = part.state
        done = stop / max(n, 1)
        _report(checkpoint, SIGNALS_DONE + (SIMULATION_DONE - SIGNALS_DONE) * done)
    equity = EquityCurve.join(candles, [p.equity for p in parts])
    trades = Trades.concat([p.trades for p in parts])
    metrics = compute_metrics(
        equity.ts,
        equity.equity,
        initial_capital=config.initial_capital,
        trade_pnl=trades.pnl,
        trade_pnl_pct=trades.pnl_pct,
        bars_in_market=equity.bars_in_market(),
        first_open=float(candles.open[0]) if n else None,
        last_close=float(candles.close[-1]) if n else None,
    )
    result = BacktestResult(
        spec=spec or {},
        risk=risk,
        config=config,
        warmup=warmup,
        trades=trades,
        fills=Fills.concat([p.fills for p in parts]),
        open_position=OpenPosition.from_state(state, float(candles.close[-1])) if n else None,
        equity=equity,
        metrics=metrics,
        state=state,
    )
    _report(checkpoint, 1.0)
    return result


def run_backtest(
    candles: Candles,
    strategy_spec: Mapping[str, Any] | Strategy,
    risk: Risk | Mapping[str, Any] | None = None,
    config: BrokerConfig | Mapping[str, Any] | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    chunk_bars: int = CHUNK_BARS,
    trade_from_ms: int | None = None,
) -> BacktestResult:
    """Validate the spec, compute its signals and simulate them over ``candles``.

    ``strategy_spec`` is ``{"template": key, "params": {...}}`` or ``{"rules": {...}}``
    (or a validated Strategy); ``risk`` and ``config`` may be JSON mappings. Raises
    ParamError / RuleError for invalid input. ``checkpoint(progress)`` is called with
    0..1 after the signals and after every ``chunk_bars`` bars; returning False raises
    Cancelled. With ``trade_from_ms``, bars before it only warm up the indicators
    (load ``Strategy.warmup`` bars before it): trading, equity and metrics start at the
    first bar with ``ts >= trade_from_ms``, and bar indices count from there.
    """
    strategy = strategy_spec if isinstance(strategy_spec, Strategy) else None
    if strategy is None:
        strategy = validate_strategy(strategy_spec)
    risk_ = risk if isinstance(risk, Risk) else validate_risk(risk or {})
    config_ = config if isinstance(config, BrokerConfig) else validate_config(config or {})
    _report(checkpoint, 0.0)
    signals = strategy.signals(candles)
    _report(checkpoint, SIGNALS_DONE)
    if trade_from_ms is not None:
        first = int(np.searchsorted(candles.ts, trade_from_ms, side="left"))
        candles = candles.slice(first, len(candles))
        signals = signals.slice(first, len(signals))
    return backtest_signals(
        candles,
        signals,
        risk_,
        config_,
        checkpoint=checkpoint,
        chunk_bars=chunk_bars,
        spec=strategy.spec,
        warmup=strategy.warmup,
    )


def candles_fingerprint(candles: Candles) -> str:
    """Hex BLAKE2b-256 of the candle columns: changes whenever any value changes."""
    digest = hashlib.blake2b(digest_size=32)
    for column in (candles.ts, candles.open, candles.high, candles.low, candles.close):
        digest.update(column.tobytes())
    digest.update(candles.volume.tobytes())
    return digest.hexdigest()
