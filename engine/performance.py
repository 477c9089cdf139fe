"""Live performance: the metric set of engine.metrics over a period, from daily rollups.

A live run's raw equity (one mark per bar) is folded into one row per UTC day (first and
last bar, close, high, low, the deepest intraday fall below the day's own running
peak, and the trades that closed that day). :func:`period_performance` computes, for many
runs at once and without a Python loop per run, exactly what
:func:`engine.metrics.compute_metrics` computes over the same window of bars: the
window's starting equity plays the initial capital (the last close before the window, or
the run's initial capital), daily returns are those of day-end equity, 365 days a year,
sample standard deviations, None (NaN in the arrays) when undefined. Definitions in
docs/metrics.md ("Live performance").

Max drawdown is exact from the rollups. Write ``e_i`` for the marks of day d (positive),
``m_i`` for the day's running peak at mark i (the max of the day's marks up to i) and
``P`` for the peak carried into the day: the window's starting equity and the highs of
the earlier days of the window. compute_metrics' running peak at mark i is
``max(P, m_i)``, and for ``e > 0`` the map ``x -> 1 - e / x`` increases, so
``1 - e_i / max(P, m_i) = max(1 - e_i / P, 1 - e_i / m_i)``. The max over the day's
marks is therefore ``max(1 - low / P, max_drawdown_d)``, since ``min e_i = low`` and
``max_i (1 - e_i / m_i)`` is the day's intraday drawdown; the window's drawdown is the
max over its days (and 0 at least). Both terms are the same floating-point operations as
the per-bar ones (``fl(1 - x)`` is monotone), so the result is bit for bit compute_metrics'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.metrics import DAY_MS, DAYS_PER_YEAR, MIN_ANNUALIZED_DAYS

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def normal_cdf(z: float) -> float:
    """The standard normal distribution function Φ(z), through math.erf."""
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def probabilistic_sharpe(returns: Floats, benchmark: float = 0.0) -> float | None:
    """Bailey and López de Prado's probabilistic Sharpe ratio of per-period returns.

    ``PSR = Φ((SR - SR*) √(n - 1) / √(1 - g3 SR + (g4 - 1) / 4 SR²))`` with SR the
    non-annualised Sharpe ratio (mean over the ddof=1 standard deviation), g3 the
    skewness and g4 the (non-excess) kurtosis as population moments, SR* the benchmark.
    None when n < 3, the deviation is 0 or the radicand is not positive.
    """
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 3:
        return None
    mean = float(r.mean())
    dev = r - mean
    m2 = float(np.mean(dev**2))
    std = float(r.std(ddof=1))
    if std <= 0 or m2 <= 0:
        return None
    sr = mean / std
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    radicand = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    if not radicand > 0:
        return None
    return normal_cdf((sr - benchmark) * math.sqrt(n - 1) / math.sqrt(radicand))


@dataclass(frozen=True)
class DailyRollups:
    """Daily rows of many runs, sorted by run then day; ``offsets[k]`` is run k's first row.

    Every run has at least one row. ``gross_loss`` is positive (the sum of the losing
    trades' |pnl|); ``max_drawdown`` is the day's fall below its own running peak.
    """

    offsets: Ints
    initial_capital: Floats
    bar_ms: Ints
    day: Ints
    first_ts: Ints
    last_ts: Ints
    close: Floats
    high: Floats
    low: Floats
    max_drawdown: Floats
    trades: Ints
    wins: Ints
    gross_profit: Floats
    gross_loss: Floats

    @property
    def runs(self) -> int:
        """How many runs the rows cover."""
        return len(self.offsets)


@dataclass(frozen=True)
class PeriodPerformance:
    """Per run: the period's metrics; NaN where a metric is undefined (see :meth:`row`)."""

    start_ts: Ints
    as_of_ts: Ints
    days_tracked: Floats
    total_return: Floats
    annualized_return: Floats
    annualized_volatility: Floats
    sharpe: Floats
    sortino: Floats
    calmar: Floats
    psr: Floats
    max_drawdown: Floats
    trades: Ints
    win_rate: Floats
    profit_factor: Floats

    def row(self, k: int) -> dict[str, Any]:
        """Run k's metrics as JSON-safe Python values, None for anything not finite."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)[k]
            if isinstance(value, np.integer):
                out[f.name] = int(value)
            else:
                number = float(value)
                out[f.name] = number if math.isfinite(number) else None
        return out


_INTEGERS = ("start_ts", "as_of_ts", "trades")


def _segments(offsets: Ints, total: int) -> Ints:
    """The segment index of every row, for segments starting at ``offsets``."""
    marks = np.zeros(total, dtype=np.int64)
    marks[offsets[1:]] = 1
    return np.cumsum(marks)


def _segment_cummax(values: Floats, seg: Ints) -> Floats:
    """Running max of ``values`` restarting at each segment (seg sorted, non-decreasing).

    A doubling scan (Hillis and Steele): after the pass with shift s every element holds
    the max of the last 2s elements of its segment, so log2(longest segment) whole-array
    passes do it, exactly, with no loop per segment.
    """
    out = values.copy()
    n = len(out)
    if n == 0:
        return out
    heads = np.flatnonzero(np.diff(seg, prepend=seg[0] - 1))
    lengths = np.diff(np.append(heads, n))
    rank = np.arange(n, dtype=np.int64) - np.repeat(heads, lengths)
    shift = 1
    while shift < int(lengths.max()):
        reach = rank[shift:] >= shift
        np.maximum(out[shift:], np.where(reach, out[:-shift], out[shift:]), out=out[shift:])
        shift *= 2
    return out


def _sums(values: NDArray[Any], starts: Ints) -> NDArray[Any]:
    return np.add.reduceat(values, starts) if len(values) else values[:0]


def period_performance(rollups: DailyRollups, days: int | None) -> PeriodPerformance:
    """Metrics of every run over its last ``days`` UTC days (None: the whole run).

    The window ends with the run's last day (partial days included) and starts with
    ``last day - days + 1``; its starting equity is the close of the run's last day before
    the window, or the initial capital.
    """
    runs = rollups.runs
    total = len(rollups.day)
    if runs == 0:
        none: Any = {
            f.name: np.empty(0, dtype=np.int64 if f.name in _INTEGERS else np.float64)
            for f in fields(PeriodPerformance)
        }
        return PeriodPerformance(**none)
    offsets = rollups.offsets.astype(np.int64)
    ends = np.append(offsets[1:], total)
    if (ends <= offsets).any():
        raise ValueError("every run needs at least one daily row")
    seg_all = _segments(offsets, total)
    last_day = rollups.day[ends - 1]
    if days is None:
        keep = np.ones(total, dtype=bool)
    else:
        keep = rollups.day >= (last_day - days + 1)[seg_all]
    # Days are sorted within a run, so a window is a suffix of its run's rows.
    starts = ends - _sums(keep.astype(np.int64), offsets)
    has_before = starts > offsets
    start_equity = np.where(
        has_before, rollups.close[np.maximum(starts - 1, 0)], rollups.initial_capital
    )
    idx = np.flatnonzero(keep)
    counts = ends - starts
    w_off = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    seg = _segments(w_off, len(idx))
    close = rollups.close[idx]

    first_ts = rollups.first_ts[starts]
    as_of = rollups.last_ts[ends - 1]
    span = (as_of + rollups.bar_ms - first_ts) / DAY_MS
    final = close[w_off + counts - 1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        growth = final / start_equity
        total_return = growth - 1.0
        annual_ok = span >= MIN_ANNUALIZED_DAYS
        annualized = np.full(runs, np.nan)
        positive = annual_ok & (growth > 0)
        annualized[positive] = growth[positive] ** (DAYS_PER_YEAR / span[positive]) - 1.0
        annualized[annual_ok & ~(growth > 0)] = -1.0

        drawdown = _window_drawdown(rollups, idx, seg, w_off, start_equity)
        calmar = np.where(drawdown > 0, annualized / drawdown, np.nan)

        volatility, sharpe, sortino, psr = _daily_stats(close, seg, w_off, counts, start_equity)
    volatility[~annual_ok] = sharpe[~annual_ok] = sortino[~annual_ok] = psr[~annual_ok] = np.nan

    trades = _sums(rollups.trades[idx], w_off).astype(np.int64)
    wins = _sums(rollups.wins[idx], w_off).astype(np.float64)
    profit = _sums(rollups.gross_profit[idx], w_off)
    loss = _sums(rollups.gross_loss[idx], w_off)
    with np.errstate(divide="ignore", invalid="ignore"):
        win_rate = np.where(trades > 0, wins / trades, np.nan)
        profit_factor = np.where(loss > 0, profit / loss, np.nan)
    return PeriodPerformance(
        start_ts=first_ts.astype(np.int64),
        as_of_ts=as_of.astype(np.int64),
        days_tracked=span.astype(np.float64),
        total_return=_nan_if_infinite(total_return),
        annualized_return=_nan_if_infinite(annualized),
        annualized_volatility=volatility,
        sharpe=sharpe,
        sortino=sortino,
        calmar=_nan_if_infinite(calmar),
        psr=psr,
        max_drawdown=drawdown,
        trades=trades,
        win_rate=win_rate,
        profit_factor=profit_factor,
    )


def _nan_if_infinite(values: Floats) -> Floats:
    return np.where(np.isfinite(values), values, np.nan)


def _window_drawdown(
    rollups: DailyRollups, idx: Ints, seg: Ints, w_off: Ints, start_equity: Floats
) -> Floats:
    """Each window's max drawdown: max over its days of max(intraday, 1 - low / P)."""
    rows = len(idx)
    # Each window's sequence [start equity, high_0, high_1, ...]: the running max just
    # before high_j is the peak P carried into day j.
    pos = np.arange(rows, dtype=np.int64) + seg + 1  # day j's slot, after its window's head
    heads = w_off + np.arange(len(w_off), dtype=np.int64)
    seq = np.empty(rows + len(w_off))
    seq[heads] = start_equity
    seq[pos] = rollups.high[idx]
    seq_seg = np.empty(len(seq), dtype=np.int64)
    seq_seg[heads] = np.arange(len(w_off), dtype=np.int64)
    seq_seg[pos] = seg
    peak = _segment_cummax(seq, seq_seg)[pos - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.fmax(rollups.max_drawdown[idx], 1.0 - rollups.low[idx] / peak)
    worst = np.maximum.reduceat(fall, w_off)
    return np.maximum(worst, 0.0)


def _daily_stats(
    close: Floats, seg: Ints, w_off: Ints, counts: Ints, start_equity: Floats
) -> tuple[Floats, Floats, Floats, Floats]:
    """Annualized volatility, Sharpe, Sortino and PSR of each window's day-end equity."""
    prev = np.empty(len(close))
    prev[1:] = close[:-1]
    prev[w_off] = start_equity
    # Undefined once the equity is gone (as compute_metrics): any non-positive base.
    bad = _sums((prev <= 0).astype(np.int64), w_off) > 0
    returns = close / prev - 1.0
    n = counts.astype(np.float64)
    mean = _sums(returns, w_off) / n
    dev = returns - mean[seg]
    sq = dev * dev
    m2 = _sums(sq, w_off) / n
    std = np.sqrt(_sums(sq, w_off) / (n - 1.0))
    downside = np.sqrt(_sums(np.minimum(returns, 0.0) ** 2, w_off) / n)
    scale = math.sqrt(DAYS_PER_YEAR)
    ok = ~bad & (counts >= 2)
    volatility = np.where(ok, std * scale, np.nan)
    sharpe = np.where(ok & (std > 0), mean / std * scale, np.nan)
    sortino = np.where(ok & (downside > 0), mean / downside * scale, np.nan)

    sr = mean / std
    skew = _sums(sq * dev, w_off) / n / m2**1.5
    kurt = _sums(sq * sq, w_off) / n / m2**2
    radicand = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    psr_ok = ok & (counts >= 3) & (std > 0) & (m2 > 0) & (radicand > 0)
    z = np.where(psr_ok, sr * np.sqrt(n - 1.0) / np.sqrt(np.where(psr_ok, radicand, 1.0)), 0.0)
    erf = np.frompyfunc(math.erf, 1, 1)
    cdf = 0.5 * (1.0 + np.asarray(erf(z / math.sqrt(2.0)), dtype=np.float64))
    psr = np.where(psr_ok, cdf, np.nan)
    return volatility, sharpe, sortino, psr
