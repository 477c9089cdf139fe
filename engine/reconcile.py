"""Comparing a live run with the backtest of the same bars: the trade diff, the equity distance.

Trades are matched by ``(side, entry_ts, exit_ts)``: the same position opened and closed
on the same bars. A matched pair may still differ in price or size (a rewritten candle
moves a fill price, a changed fee moves the units); an unmatched trade is ``missing`` (the
backtest has it, the run does not) or ``extra`` (the run has it, the backtest does not).
Every difference is signed run minus backtest. Pure: records and arrays in, numbers out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.ledger import plain_trade

TradeKey = tuple[str, int, int, int]  # side, entry ts, exit ts, n-th trade with that key


@dataclass(frozen=True)
class TradeDiff:
    """How two lists of closed trades line up.

    ``differences`` lists every missing or extra trade and every matched pair whose
    price, size or P&L differ, ordered by exit then entry time.
    """

    matched: int
    missing: int
    extra: int
    max_price_diff: float
    max_size_diff: float
    differences: list[dict[str, Any]]


@dataclass(frozen=True)
class EquityDistance:
    """Distance between two equity curves at the bar times they share.

    ``final_diff`` is taken at the last shared bar; ``run_only`` and ``backtest_only``
    count bars that only one curve has (a candle added or deleted since the run).
    """

    compared: int
    run_only: int
    backtest_only: int
    max_abs_diff: float
    mean_abs_diff: float
    final_diff: float
    max_abs_diff_ts: int | None
    run_final: float | None
    backtest_final: float | None


def _keyed(trades: Sequence[Mapping[str, Any]]) -> dict[TradeKey, Mapping[str, Any]]:
    seen: dict[tuple[str, int, int], int] = {}
    keyed: dict[TradeKey, Mapping[str, Any]] = {}
    for trade in trades:
        base = (str(trade["side"]), int(trade["entry_ts"]), int(trade["exit_ts"]))
        n = seen.get(base, 0)
        seen[base] = n + 1
        keyed[(*base, n)] = trade
    return keyed


def _difference(
    kind: str,
    key: TradeKey,
    run: Mapping[str, Any] | None,
    backtest: Mapping[str, Any] | None,
    columns: Sequence[str],
) -> dict[str, Any]:
    def delta(name: str) -> float | None:
        if run is None or backtest is None:
            return None
        return float(run[name]) - float(backtest[name])

    return {
        "kind": kind,
        "side": key[0],
        "entry_ts": key[1],
        "exit_ts": key[2],
        "run": None if run is None else plain_trade(run, columns),
        "backtest": None if backtest is None else plain_trade(backtest, columns),
        "entry_price_diff": delta("entry_price"),
        "exit_price_diff": delta("exit_price"),
        "units_diff": delta("units"),
        "pnl_diff": delta("pnl"),
    }


def diff_trades(
    run: Sequence[Mapping[str, Any]],
    backtest: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
) -> TradeDiff:
    """Match the run's closed trades with the backtest's; ``columns`` are copied into the diff."""
    mine, theirs = _keyed(run), _keyed(backtest)
    differences: list[dict[str, Any]] = []
    max_price = max_size = 0.0
    matched = 0
    for key in sorted(mine.keys() | theirs.keys(), key=lambda k: (k[2], k[1], k[0], k[3])):
        live, replay = mine.get(key), theirs.get(key)
        if live is None:
            differences.append(_difference("missing", key, None, replay, columns))
            continue
        if replay is None:
            differences.append(_difference("extra", key, live, None, columns))
            continue
        matched += 1
        entry = abs(float(live["entry_price"]) - float(replay["entry_price"]))
        exit_ = abs(float(live["exit_price"]) - float(replay["exit_price"]))
        size = abs(float(live["units"]) - float(replay["units"]))
        pnl = abs(float(live["pnl"]) - float(replay["pnl"]))
        max_price, max_size = max(max_price, entry, exit_), max(max_size, size)
        if entry or exit_ or size or pnl:
            differences.append(_difference("changed", key, live, replay, columns))
    return TradeDiff(
        matched=matched,
        missing=len(theirs) - matched,
        extra=len(mine) - matched,
        max_price_diff=max_price,
        max_size_diff=max_size,
        differences=differences,
    )


def equity_distance(
    run_ts: NDArray[np.int64],
    run_equity: NDArray[np.float64],
    backtest_ts: NDArray[np.int64],
    backtest_equity: NDArray[np.float64],
) -> EquityDistance:
    """The run's equity minus the backtest's at the bar times both have (ts ascending)."""
    shared, mine, theirs = np.intersect1d(
        run_ts, backtest_ts, assume_unique=True, return_indices=True
    )
    n = len(shared)
    if n == 0:
        return EquityDistance(0, len(run_ts), len(backtest_ts), 0.0, 0.0, 0.0, None, None, None)
    diff = run_equity[mine] - backtest_equity[theirs]
    absolute = np.abs(diff)
    worst = int(np.argmax(absolute))
    return EquityDistance(
        compared=n,
        run_only=len(run_ts) - n,
        backtest_only=len(backtest_ts) - n,
        max_abs_diff=float(absolute[worst]),
        mean_abs_diff=float(absolute.mean()),
        final_diff=float(diff[-1]),
        max_abs_diff_ts=int(shared[worst]) if absolute[worst] > 0 else None,
        run_final=float(run_equity[mine[-1]]),
        backtest_final=float(backtest_equity[theirs[-1]]),
    )
