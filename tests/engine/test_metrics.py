"""Every metric on small hand-computed equity series, and the edge cases."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest

from engine.metrics import (
    METRICS_VERSION,
    compute_metrics,
    day_end_equity,
    drawdown,
)

DAY = 86_400_000
HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def metrics(
    equity: list[float],
    step: int = DAY,
    pnl: tuple[float, ...] = (),
    pnl_pct: tuple[float, ...] = (),
    in_market: list[bool] | None = None,
    initial: float = 100.0,
) -> dict[str, object]:
    ts = T0 + np.arange(len(equity), dtype=np.int64) * step
    result = compute_metrics(
        ts,
        np.array(equity, dtype=np.float64),
        initial_capital=initial,
        trade_pnl=np.array(pnl, dtype=np.float64),
        trade_pnl_pct=np.array(pnl_pct, dtype=np.float64),
        bars_in_market=sum(in_market or []),
        first_open=50.0 if equity else None,
        last_close=60.0 if equity else None,
    )
    out = result.as_dict()
    json.dumps(out, allow_nan=False)
    return out


def test_every_metric_on_daily_bars() -> None:
    equity = [110.0, 99.0, 121.0, 121.0, 110.0]
    out = metrics(
        equity,
        pnl=(10.0, -5.0, 20.0, -10.0),
        pnl_pct=(0.1, -0.05, 0.2, -0.1),
        in_market=[True, True, False, False, True],
    )
    returns = [0.1, -0.1, 121 / 99 - 1, 0.0, 110 / 121 - 1]  # the first against 100
    mean, std = statistics.fmean(returns), statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    annualized = 1.1 ** (365 / 5) - 1  # 5 daily bars span 5 days
    assert out == {
        "bars": 5,
        "start_ts": T0,
        "end_ts": T0 + 4 * DAY,
        "days": 5.0,
        "initial_equity": 100.0,
        "final_equity": 110.0,
        "total_return": pytest.approx(0.1, rel=1e-12),
        "annualized_return": pytest.approx(annualized, rel=1e-12),
        "annualized_volatility": pytest.approx(std * math.sqrt(365), rel=1e-12),
        "sharpe": pytest.approx(mean / std * math.sqrt(365), rel=1e-12),
        "sortino": pytest.approx(mean / downside * math.sqrt(365), rel=1e-12),
        "calmar": pytest.approx(annualized / 0.1, rel=1e-12),
        "max_drawdown": pytest.approx(0.1, rel=1e-12),  # 110 -> 99
        "max_drawdown_duration_ms": 2 * DAY,  # peak on day 0, back above on day 2
        "max_drawdown_duration_bars": 2,
        "trades": 4,
        "win_rate": 0.5,
        "profit_factor": 2.0,  # 30 / 15
        "expectancy": 3.75,
        "expectancy_pct": pytest.approx(0.0375, rel=1e-12),
        "exposure": 0.6,
        "buy_and_hold_return": pytest.approx(0.2, rel=1e-12),
    }


def test_daily_returns_come_from_the_last_bar_of_each_utc_day() -> None:
    ts = T0 + np.arange(0, 60, 6, dtype=np.int64) * HOUR  # 00:00, 06:00, ... over 2.5 days
    equity = np.arange(10, dtype=np.float64) + 100
    np.testing.assert_array_equal(day_end_equity(ts, equity), [103.0, 107.0, 109.0])
    gappy = np.array([T0, T0 + 3 * DAY + HOUR, T0 + 3 * DAY + 2 * HOUR], dtype=np.int64)
    np.testing.assert_array_equal(day_end_equity(gappy, np.array([1.0, 2.0, 3.0])), [1.0, 3.0])
    out = metrics(equity.tolist(), step=6 * HOUR)
    returns = [103 / 100 - 1, 107 / 103 - 1, 109 / 107 - 1]
    assert out["sharpe"] == pytest.approx(
        statistics.fmean(returns) / statistics.stdev(returns) * math.sqrt(365), rel=1e-12
    )
    assert out["days"] == 2.5


def test_drawdown_from_the_initial_capital_and_to_the_end() -> None:
    ts = T0 + np.arange(4, dtype=np.int64) * DAY
    # Below the initial 100 from the first bar and never back: peak is the start.
    assert drawdown(ts, np.array([90.0, 80.0, 95.0, 85.0]), 100.0, DAY) == (
        pytest.approx(0.2),
        4 * DAY,
        4,
    )
    # A one-bar dip at the end still counts.
    assert drawdown(ts, np.array([101.0, 102.0, 103.0, 102.0]), 100.0, DAY) == (
        pytest.approx(1 / 103),
        DAY,
        1,
    )
    assert drawdown(ts, np.array([100.0, 101.0, 101.0, 102.0]), 100.0, DAY) == (0.0, 0, 0)
    # The longest spell is reported even when it is not the deepest.
    equity = np.array([100.0, 70.0, 100.0, 99.0, 99.0, 99.0, 100.0, 100.0])
    ts8 = T0 + np.arange(8, dtype=np.int64) * DAY
    assert drawdown(ts8, equity, 100.0, DAY) == (pytest.approx(0.3), 4 * DAY, 4)


def test_short_runs_have_no_annualized_figures() -> None:
    out = metrics([100.0, 101.0, 99.0, 102.0], step=HOUR)
    for key in ("annualized_return", "annualized_volatility", "sharpe", "sortino", "calmar"):
        assert out[key] is None
    assert out["total_return"] == pytest.approx(0.02)
    assert out["max_drawdown"] == pytest.approx(1 - 99 / 101)


def test_undefined_ratios_are_none() -> None:
    flat = metrics([100.0] * 5)
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["calmar"] is None
    assert flat["annualized_volatility"] == 0.0 and flat["max_drawdown"] == 0.0
    assert flat["win_rate"] is None and flat["profit_factor"] is None
    assert flat["expectancy"] is None and flat["expectancy_pct"] is None
    winners = metrics([100.0] * 5, pnl=(1.0, 2.0), pnl_pct=(0.01, 0.02))
    assert winners["profit_factor"] is None and winners["win_rate"] == 1.0
    rising = metrics([101.0, 102.0, 104.0, 105.0, 107.0])
    assert rising["sortino"] is None and rising["calmar"] is None and rising["sharpe"] > 0
    empty = metrics([])
    assert empty["bars"] == 0 and empty["exposure"] is None
    assert empty["buy_and_hold_return"] is None and empty["total_return"] == 0.0
    ruined = metrics([50.0, -10.0, -20.0])
    assert ruined["annualized_return"] == -1.0 and ruined["sharpe"] is None


def test_version() -> None:
    assert METRICS_VERSION == "1"
