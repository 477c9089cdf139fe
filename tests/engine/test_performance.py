"""Live performance from daily rollups equals compute_metrics over the same bars; PSR."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from engine.metrics import DAY_MS, compute_metrics
from engine.performance import (
    DailyRollups,
    normal_cdf,
    period_performance,
    probabilistic_sharpe,
)

HOUR = 3_600_000
SHARED = (
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "trades",
    "win_rate",
    "profit_factor",
)

Run = tuple[
    NDArray[np.int64], NDArray[np.float64], float, int, NDArray[np.int64], NDArray[np.float64]
]


def rollup(runs: list[Run]) -> DailyRollups:
    """The daily rows of per-bar runs, as models/performance/rollups.py aggregates them."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            [
                "day",
                "first_ts",
                "last_ts",
                "close",
                "high",
                "low",
                "max_drawdown",
                "trades",
                "wins",
                "gross_profit",
                "gross_loss",
            ]
        )
    }
    offsets, capital, bar_ms = [], [], []
    for ts, equity, initial, step, exit_ts, pnl in runs:
        offsets.append(len(cols["day"]))
        capital.append(initial)
        bar_ms.append(step)
        days = ts // DAY_MS
        for day in np.unique(days):
            e = equity[days == day]
            t = ts[days == day]
            closed = pnl[exit_ts // DAY_MS == day]
            cols["day"].append(int(day))
            cols["first_ts"].append(int(t[0]))
            cols["last_ts"].append(int(t[-1]))
            cols["close"].append(e[-1])
            cols["high"].append(e.max())
            cols["low"].append(e.min())
            peak = np.maximum.accumulate(e)
            falls = 1.0 - e[peak > 0] / peak[peak > 0]  # a day spent at 0 falls by nothing
            cols["max_drawdown"].append(float(falls.max()) if len(falls) else 0.0)
            cols["trades"].append(len(closed))
            cols["wins"].append(int((closed > 0).sum()))
            cols["gross_profit"].append(float(closed[closed > 0].sum()))
            cols["gross_loss"].append(float(-closed[closed < 0].sum()))
    ints = {"day", "first_ts", "last_ts", "trades", "wins"}
    arrays: Any = {
        k: np.asarray(v, dtype=np.int64 if k in ints else np.float64) for k, v in cols.items()
    }
    return DailyRollups(
        offsets=np.asarray(offsets, dtype=np.int64),
        initial_capital=np.asarray(capital, dtype=np.float64),
        bar_ms=np.asarray(bar_ms, dtype=np.int64),
        **arrays,
    )


def reference(run: Run, days: int | None) -> dict[str, Any]:
    """compute_metrics over the window's bars, its starting equity as the initial capital."""
    ts, equity, initial, step, exit_ts, pnl = run
    first = 0
    if days is not None:
        first_day = int(ts[-1]) // DAY_MS - days + 1
        first = int(np.searchsorted(ts, first_day * DAY_MS))
    start = float(equity[first - 1]) if first > 0 else initial
    closed = pnl[exit_ts >= ts[first]]
    m = compute_metrics(
        ts[first:],
        equity[first:],
        initial_capital=start,
        trade_pnl=closed,
        trade_pnl_pct=closed,
        bars_in_market=0,
        first_open=None,
        last_close=None,
        bar_ms=step,
    ).as_dict()
    return {**{k: m[k] for k in SHARED}, "start_ts": m["start_ts"], "days_tracked": m["days"]}


def random_run(rng: np.random.Generator, days: float, step: int, start_day: int) -> Run:
    n = int(days * DAY_MS / step)
    ts = start_day * DAY_MS + 7 * step + np.arange(n, dtype=np.int64) * step
    ts = np.sort(rng.choice(ts, size=int(n * 0.8), replace=False))  # gaps, whole days too
    ts = ts[(ts // DAY_MS != start_day + 2)]  # a day with no bars at all
    steps = rng.normal(0.0002, 0.01, len(ts))
    steps[len(ts) // 3 : len(ts) // 3 + 40] = -0.004  # a losing streak across a day boundary
    equity = 10_000.0 * np.exp(np.cumsum(steps))
    equity[len(ts) // 2] = equity.max() * 1.05  # a new high in the middle of a day
    exits = np.sort(rng.choice(ts, size=15, replace=False))
    pnl = rng.normal(5.0, 40.0, 15)
    return ts, equity, 10_000.0, step, exits, pnl


def assert_matches(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key, expected in want.items():
        value = got[key]
        if expected is None:
            assert value is None, key
        else:
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize("period", [None, 7, 30])
def test_rollup_metrics_equal_compute_metrics_on_the_bars(period: int | None) -> None:
    rng = np.random.default_rng(14)
    runs = [
        random_run(rng, 9.5, HOUR, 20_000),
        random_run(rng, 3.2, 60_000, 20_100),
        random_run(rng, 1.5, HOUR, 20_200),  # under two days: no annualized figures
        random_run(rng, 40.0, 4 * HOUR, 20_300),
    ]
    perf = period_performance(rollup(runs), period)
    for k, run in enumerate(runs):
        assert_matches(perf.row(k), reference(run, period))
        assert perf.row(k)["as_of_ts"] == int(run[0][-1])
    assert perf.row(2)["sharpe"] is None and perf.row(2)["psr"] is None
    assert perf.row(0)["max_drawdown"] > 0.04


def test_drawdown_carries_the_peak_across_days_and_sees_intraday_falls() -> None:
    day = 20_000 * DAY_MS
    # Day 0 peaks at 120 and ends at 110; day 1 never reaches 120 and falls to 90 (-25 %
    # from day 0's peak, -10 % from its own); day 2 rises to 200 then falls to 150 (-25 %
    # intraday, below no earlier peak): the window's drawdown is 1 - 90 / 120 = 0.25.
    ts = np.asarray(
        [day, day + HOUR, day + 2 * HOUR]
        + [day + DAY_MS + i * HOUR for i in range(3)]
        + [day + 2 * DAY_MS + i * HOUR for i in range(3)],
        dtype=np.int64,
    )
    equity = np.asarray([100.0, 120.0, 110.0, 100.0, 90.0, 95.0, 200.0, 150.0, 160.0])
    run: Run = (ts, equity, 100.0, HOUR, np.empty(0, dtype=np.int64), np.empty(0))
    rollups = rollup([run])
    assert rollups.max_drawdown.tolist() == pytest.approx([1 - 110 / 120, 0.1, 0.25])
    for period in (None, 7):
        got = period_performance(rollups, period).row(0)
        assert got["max_drawdown"] == pytest.approx(0.25)
        assert got["max_drawdown"] == reference(run, period)["max_drawdown"]
    # A two-day window starts from day 0's close (110): day 1's low gives 1 - 90/110.
    got = period_performance(rollups, 2).row(0)
    assert got["max_drawdown"] == pytest.approx(0.25)  # day 2's intraday fall still wins
    one = period_performance(rollups, 1).row(0)
    assert one["max_drawdown"] == pytest.approx(0.25) and one["total_return"] == pytest.approx(
        160 / 95 - 1
    )


def test_seven_day_window_by_hand() -> None:
    # Ten days, one mark a day at noon; the 7-day window is days 3..9, starting from day
    # 2's close (the previous day's close is the window's starting equity).
    day0 = 20_000
    ts = np.asarray([(day0 + i) * DAY_MS + 12 * HOUR for i in range(10)], dtype=np.int64)
    equity = np.asarray([101, 99, 100, 104, 102, 98, 103, 107, 105, 110], dtype=np.float64)
    exits = np.asarray([ts[1], ts[4], ts[6], ts[8]], dtype=np.int64)
    pnl = np.asarray([-1.0, 4.0, -2.0, 3.0])
    run: Run = (ts, equity, 100.0, HOUR, exits, pnl)
    got = period_performance(rollup([run]), 7).row(0)
    returns = (
        np.asarray([104 / 100, 102 / 104, 98 / 102, 103 / 98, 107 / 103, 105 / 107, 110 / 105]) - 1
    )
    assert got["start_ts"] == ts[3] and got["as_of_ts"] == ts[9]
    assert got["days_tracked"] == pytest.approx((ts[9] + HOUR - ts[3]) / DAY_MS)
    assert got["total_return"] == pytest.approx(0.10)
    assert got["sharpe"] == pytest.approx(returns.mean() / returns.std(ddof=1) * math.sqrt(365))
    assert got["max_drawdown"] == pytest.approx(1 - 98 / 104)
    assert got["trades"] == 3 and got["win_rate"] == pytest.approx(2 / 3)
    assert got["profit_factor"] == pytest.approx(7 / 2)
    assert got["psr"] == pytest.approx(probabilistic_sharpe(returns))
    assert_matches(got, reference(run, 7))


def test_one_mark_and_a_lost_account() -> None:
    day = 20_000 * DAY_MS
    single: Run = (
        np.asarray([day], dtype=np.int64),
        np.asarray([95.0]),
        100.0,
        HOUR,
        np.empty(0, dtype=np.int64),
        np.empty(0),
    )
    ts = np.asarray([day + i * DAY_MS for i in range(4)], dtype=np.int64)
    gone: Run = (
        ts,
        np.asarray([50.0, 0.0, 0.0, 0.0]),
        100.0,
        HOUR,
        np.empty(0, dtype=np.int64),
        np.empty(0),
    )
    perf = period_performance(rollup([single, gone]), None)
    assert_matches(perf.row(0), reference(single, None))
    assert perf.row(0)["days_tracked"] == pytest.approx(1 / 24)
    assert_matches(perf.row(1), reference(gone, None))
    assert perf.row(1)["sharpe"] is None and perf.row(1)["max_drawdown"] == 1.0
    assert perf.row(1)["total_return"] == -1.0 and perf.row(1)["annualized_return"] == -1.0


def test_no_runs() -> None:
    perf = period_performance(rollup([]), 7)
    assert len(perf.sharpe) == 0 and perf.trades.dtype == np.int64


# The worked example of docs/metrics.md ("Probabilistic Sharpe ratio").
PSR_RETURNS = np.asarray([0.02, -0.01, 0.015, 0.005, -0.02, 0.03, 0.01, -0.005, 0.012, 0.008])


def test_psr_worked_example() -> None:
    r = PSR_RETURNS
    mean = r.mean()
    std = r.std(ddof=1)
    sr = mean / std
    dev = r - mean
    skew = np.mean(dev**3) / np.mean(dev**2) ** 1.5
    kurt = np.mean(dev**4) / np.mean(dev**2) ** 2
    z = sr * math.sqrt(len(r) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    radicand = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    assert mean == pytest.approx(0.0065, abs=1e-15)
    assert std == pytest.approx(0.0147591779, abs=1e-10)
    assert sr == pytest.approx(0.4404039323, abs=1e-10)
    assert skew == pytest.approx(-0.3045846085, abs=1e-10)
    assert kurt == pytest.approx(2.4176949613, abs=1e-10)
    assert radicand == pytest.approx(1.2028827369, abs=1e-10)
    assert z == pytest.approx(1.2046497551, abs=1e-10)
    assert probabilistic_sharpe(r) == pytest.approx(0.8858307298, abs=1e-10)
    assert probabilistic_sharpe(r) == pytest.approx(normal_cdf(z), abs=1e-15)
    # Against a benchmark Sharpe of 0.1 per day the evidence is weaker.
    weaker = probabilistic_sharpe(r, 0.1)
    assert weaker is not None and weaker < 0.8858307298


def test_psr_undefined() -> None:
    assert probabilistic_sharpe(np.asarray([0.01, 0.02])) is None
    assert probabilistic_sharpe(np.asarray([0.01, 0.01, 0.01])) is None
    assert normal_cdf(0.0) == 0.5
