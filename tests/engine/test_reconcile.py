"""The trade diff and the equity distance on hand-built trades and curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.reconcile import diff_trades, equity_distance

COLUMNS = ("side", "units", "entry_ts", "entry_price", "exit_ts", "exit_price", "pnl")


def trade(side: str, entry: int, exit_: int, **values: float) -> dict[str, Any]:
    base = {"units": 1.0, "entry_price": 100.0, "exit_price": 110.0, "pnl": 10.0}
    return {"side": side, "entry_ts": entry, "exit_ts": exit_, **base, **values}


def test_identical_trades_all_match_with_no_difference() -> None:
    trades = [trade("long", 1, 3), trade("short", 3, 5)]
    diff = diff_trades(trades, [dict(t) for t in trades], COLUMNS)
    assert (diff.matched, diff.missing, diff.extra) == (2, 0, 0)
    assert (diff.max_price_diff, diff.max_size_diff, diff.differences) == (0.0, 0.0, [])


def test_trades_match_by_side_entry_and_exit_and_differences_are_run_minus_backtest() -> None:
    run = [
        trade("long", 1, 3, entry_price=101.5, units=0.9, pnl=8.0),
        trade("long", 5, 7),  # the backtest exits a bar later: extra here, missing there
        trade("short", 9, 10),  # the backtest is long on those bars: extra
    ]
    backtest = [trade("long", 1, 3), trade("long", 5, 8), trade("long", 9, 10)]
    diff = diff_trades(run, backtest, COLUMNS)
    assert (diff.matched, diff.missing, diff.extra) == (1, 2, 2)
    assert diff.max_price_diff == 1.5
    assert diff.max_size_diff == 0.09999999999999998
    kinds = [(d["kind"], d["side"], d["entry_ts"], d["exit_ts"]) for d in diff.differences]
    assert kinds == [
        ("changed", "long", 1, 3),
        ("extra", "long", 5, 7),
        ("missing", "long", 5, 8),
        ("missing", "long", 9, 10),
        ("extra", "short", 9, 10),
    ]
    changed = diff.differences[0]
    assert changed["entry_price_diff"] == 1.5 and changed["exit_price_diff"] == 0.0
    assert changed["units_diff"] == 0.9 - 1.0 and changed["pnl_diff"] == -2.0
    assert changed["run"]["entry_price"] == 101.5 and changed["backtest"]["entry_price"] == 100.0
    assert diff.differences[1]["backtest"] is None and diff.differences[1]["units_diff"] is None
    assert diff.differences[2]["run"] is None


def test_equity_distance_is_taken_at_the_shared_bars() -> None:
    run_ts = np.array([0, 1, 2, 3, 5], dtype=np.int64)
    run_eq = np.array([100.0, 101.0, 99.0, 104.0, 106.0])
    bt_ts = np.array([0, 1, 2, 3, 4], dtype=np.int64)
    bt_eq = np.array([100.0, 100.0, 102.0, 103.0, 50.0])
    distance = equity_distance(run_ts, run_eq, bt_ts, bt_eq)
    assert (distance.compared, distance.run_only, distance.backtest_only) == (4, 1, 1)
    assert distance.max_abs_diff == 3.0 and distance.max_abs_diff_ts == 2
    assert distance.mean_abs_diff == (0 + 1 + 3 + 1) / 4
    assert distance.final_diff == 1.0  # at bar 3, the last both have
    assert (distance.run_final, distance.backtest_final) == (104.0, 103.0)


def test_equal_or_disjoint_curves() -> None:
    ts = np.arange(3, dtype=np.int64)
    eq = np.array([1.0, 2.0, 3.0])
    same = equity_distance(ts, eq, ts, eq.copy())
    assert (same.max_abs_diff, same.mean_abs_diff, same.final_diff) == (0.0, 0.0, 0.0)
    assert same.max_abs_diff_ts is None
    apart = equity_distance(ts, eq, ts + 10, eq)
    assert (apart.compared, apart.run_only, apart.backtest_only) == (0, 3, 3)
    assert apart.run_final is None and apart.max_abs_diff_ts is None
