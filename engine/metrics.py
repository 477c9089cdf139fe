"""Performance metrics: one implementation for backtests and live runs alike.

Definitions in docs/metrics.md. In short: the equity series is the initial capital
(at the first bar's open) followed by the equity marked at every bar's close; daily
returns come from the last mark of each UTC day (by bar open time), the first against
the initial capital; markets trade every day, so annualization uses 365 days; the
risk-free rate is 0 and standard deviations are sample ones (ddof=1). Anything
undefined is None, never NaN or infinity, so ``as_dict()`` is JSON-safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

METRICS_VERSION = "1"
DAY_MS = 86_400_000
DAYS_PER_YEAR = 365
MIN_ANNUALIZED_DAYS = 2.0


@dataclass(frozen=True)
class Metrics:
    """Run statistics; fractions are plain ratios (0.25 = 25 %), None when undefined."""

    bars: int
    start_ts: int | None
    end_ts: int | None
    days: float
    initial_equity: float
    final_equity: float
    total_return: float | None
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float
    max_drawdown_duration_ms: int
    max_drawdown_duration_bars: int
    trades: int
    win_rate: float | None
    profit_factor: float | None
    expectancy: float | None
    expectancy_pct: float | None
    exposure: float | None
    buy_and_hold_return: float | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict: Python ints and floats, None for anything not finite."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | np.floating):
                value = float(value) if math.isfinite(value) else None
            elif isinstance(value, int | np.integer):
                value = int(value)
            out[f.name] = value
        return out


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def bar_interval(ts: NDArray[np.int64]) -> int:
    """The bar length in ms: the smallest gap between timestamps (0 with < 2 bars)."""
    return int(np.diff(ts).min()) if len(ts) > 1 else 0


def day_end_equity(ts: NDArray[np.int64], equity: NDArray[np.float64]) -> NDArray[np.float64]:
    """The last equity of each UTC day that has bars (days by bar open time), in order."""
    if len(ts) == 0:
        return np.empty(0)
    first_day, last_day = int(ts[0]) // DAY_MS, int(ts[-1]) // DAY_MS
    boundaries = np.arange(first_day + 1, last_day + 1, dtype=np.int64) * DAY_MS
    last = np.searchsorted(ts, boundaries, side="left") - 1
    ends = np.unique(np.append(last[last >= 0], len(ts) - 1))
    return np.asarray(equity[ends], dtype=np.float64)


def drawdown(
    ts: NDArray[np.int64], equity: NDArray[np.float64], initial: float, bar_ms: int
) -> tuple[float, int, int]:
    """Max drawdown fraction and the longest underwater spell as (ms, bars).

    The running peak starts at ``initial``, placed at the first bar's open
    (``ts[0]``); bar i's mark is at its close, ``ts[i] + bar_ms``. A spell runs from the
    peak mark before a run of marks below the peak to the first mark back at or above
    it, or to the last mark if none is; its length is that distance in ms and in bars.
    """
    n = len(equity)
    if n == 0:
        return 0.0, 0, 0
    peak = np.maximum.accumulate(equity)
    # The running peak never falls, so only its head can be below the initial capital.
    peak[: int(np.searchsorted(peak, initial))] = initial
    below = equity < peak
    np.divide(equity, peak, out=peak)
    worst = max(1.0 - float(peak.min()), 0.0)
    # Runs of marks below the peak: starts where below turns on, ends where it turns off.
    turns = np.flatnonzero(below[1:] != below[:-1]) + 1
    starts = turns[below[turns]]
    ends = turns[~below[turns]]
    if below[0]:
        starts = np.concatenate(([0], starts))
    if len(starts) == 0:
        return worst, 0, 0
    if len(ends) < len(starts):
        ends = np.append(ends, n - 1)  # still under water: the spell runs to the end
    peaks = starts - 1  # -1 is the initial capital
    peak_ms = np.where(peaks >= 0, ts[np.maximum(peaks, 0)] + bar_ms, ts[0])
    spans_ms = ts[ends] + bar_ms - peak_ms
    longest = int(np.argmax(spans_ms))
    return worst, int(spans_ms[longest]), int(ends[longest] - peaks[longest])


def _daily_stats(
    daily: NDArray[np.float64], initial: float
) -> tuple[float | None, float | None, float | None]:
    """Annualized volatility, Sharpe and Sortino of the day-end equity series."""
    values = np.concatenate(([initial], daily))
    if len(values) < 3 or not (values[:-1] > 0).all():
        return None, None, None  # returns are undefined once the equity is gone
    returns = values[1:] / values[:-1] - 1.0
    scale = math.sqrt(DAYS_PER_YEAR)
    mean = float(returns.mean())
    std = float(returns.std(ddof=1))
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    volatility = std * scale
    sharpe = mean / std * scale if std > 0 else None
    sortino = mean / downside * scale if downside > 0 else None
    return volatility, sharpe, sortino


def compute_metrics(
    ts: NDArray[np.int64],
    equity: NDArray[np.float64],
    *,
    initial_capital: float,
    trade_pnl: NDArray[np.float64],
    trade_pnl_pct: NDArray[np.float64],
    bars_in_market: int,
    first_open: float | None,
    last_close: float | None,
    bar_ms: int | None = None,
) -> Metrics:
    """Metrics of a run from its per-bar equity (marked at each close) and closed trades.

    ``ts`` are bar open times (ms), ``bars_in_market`` counts the closes that see a
    position, ``first_open``/``last_close`` bound buy and hold over the same bars, and
    ``bar_ms`` defaults to the smallest gap between bars.
    """
    n = len(equity)
    step = bar_interval(ts) if bar_ms is None else bar_ms
    final = float(equity[-1]) if n else initial_capital
    days = (int(ts[-1]) + step - int(ts[0])) / DAY_MS if n else 0.0
    growth = final / initial_capital
    annualized: float | None = None
    volatility = sharpe = sortino = None
    if days >= MIN_ANNUALIZED_DAYS:
        annualized = growth ** (DAYS_PER_YEAR / days) - 1.0 if growth > 0 else -1.0
        volatility, sharpe, sortino = _daily_stats(day_end_equity(ts, equity), initial_capital)
    worst, duration_ms, duration_bars = drawdown(ts, equity, initial_capital, step)
    calmar = annualized / worst if annualized is not None and worst > 0 else None
    count = len(trade_pnl)
    losses = float(-trade_pnl[trade_pnl < 0].sum())
    gains = float(trade_pnl[trade_pnl > 0].sum())
    return Metrics(
        bars=n,
        start_ts=int(ts[0]) if n else None,
        end_ts=int(ts[-1]) if n else None,
        days=days,
        initial_equity=initial_capital,
        final_equity=final,
        total_return=_finite(growth - 1.0),
        annualized_return=None if annualized is None else _finite(annualized),
        annualized_volatility=volatility,
        sharpe=sharpe,
        sortino=sortino,
        calmar=None if calmar is None else _finite(calmar),
        max_drawdown=worst,
        max_drawdown_duration_ms=duration_ms,
        max_drawdown_duration_bars=duration_bars,
        trades=count,
        win_rate=float(np.count_nonzero(trade_pnl > 0)) / count if count else None,
        profit_factor=gains / losses if losses > 0 else None,
        expectancy=float(trade_pnl.mean()) if count else None,
        expectancy_pct=float(trade_pnl_pct.mean()) if count else None,
        exposure=bars_in_market / n if n else None,
        buy_and_hold_return=(
            last_close / first_open - 1.0 if first_open and last_close is not None else None
        ),
    )
