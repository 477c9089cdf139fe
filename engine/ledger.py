"""What a simulation records: fills, closed trades, per-bar equity and the open position.

Logs are columns (numpy arrays), not lists of objects, so a million-bar backtest with
thousands of trades stays cheap; ``records()`` gives JSON-safe rows for storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from engine.broker import BrokerState
from engine.candles import Candles

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]

EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "reverse")
FILL_REASONS = ("entry", "add", *EXIT_REASONS)
SIDES = {1: "long", -1: "short"}
ACTIONS = {1: "buy", -1: "sell"}
# A simulation's fill rows: (bar, side, units, price, fee, reason, cash after, units after).
FILL_KINDS = (int, int, float, float, float, str, float, float)
Log = TypeVar("Log", "Fills", "Trades")


def to_columns(rows: Sequence[tuple[Any, ...]], kinds: tuple[type, ...]) -> list[Any]:
    """Rows of tuples as one numpy column per kind (int64, float64 or str)."""
    dtypes = {int: np.int64, float: np.float64, str: np.str_}
    if not rows:
        return [np.empty(0, dtype=dtypes[kind]) for kind in kinds]
    columns = zip(*rows, strict=True)
    return [np.array(col, dtype=dtypes[kind]) for col, kind in zip(columns, kinds, strict=True)]


def _concat(parts: Sequence[Log], cls: type[Log]) -> Log:
    return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def _records(log: Any) -> list[dict[str, Any]]:
    names = [f.name for f in fields(log)]
    columns = [getattr(log, name).tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


@dataclass(frozen=True, eq=False)
class Fills:
    """Every fill in order. ``side`` is +1 buy / -1 sell; ``bar`` is the global bar index."""

    bar: IntArray
    ts: IntArray
    side: IntArray
    units: FloatArray
    price: FloatArray
    fee: FloatArray
    reason: StrArray

    KINDS = (int, int, int, float, float, float, str)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[Any, ...]]) -> Fills:
        """Fills from ``(bar, ts, side, units, price, fee, reason)`` tuples."""
        return cls(*to_columns(rows, cls.KINDS))

    @classmethod
    def concat(cls, parts: Sequence[Fills]) -> Fills:
        """The fills of consecutive simulations, in order."""
        return _concat(parts, cls)

    def __len__(self) -> int:
        return len(self.bar)

    def records(self) -> list[dict[str, Any]]:
        """JSON-safe rows, ``side`` as "buy" / "sell"."""
        rows = _records(self)
        for row in rows:
            row["side"] = ACTIONS[row["side"]]
        return rows


@dataclass(frozen=True, eq=False)
class Trades:
    """Closed trades in order; ``side`` is +1 long / -1 short, bars are global indices.

    ``fees`` is the commission of all the trade's fills, ``pnl`` the net profit after
    them and ``pnl_pct`` that profit over the entry notional (units x entry price).
    """

    entry_bar: IntArray
    entry_ts: IntArray
    entry_price: FloatArray
    exit_bar: IntArray
    exit_ts: IntArray
    exit_price: FloatArray
    side: IntArray
    units: FloatArray
    fees: FloatArray
    pnl: FloatArray
    pnl_pct: FloatArray
    exit_reason: StrArray

    KINDS = (int, int, float, int, int, float, int, float, float, float, float, str)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[Any, ...]]) -> Trades:
        """Trades from tuples in field order."""
        return cls(*to_columns(rows, cls.KINDS))

    @classmethod
    def concat(cls, parts: Sequence[Trades]) -> Trades:
        """The trades of consecutive simulations, in order."""
        return _concat(parts, cls)

    def __len__(self) -> int:
        return len(self.entry_bar)

    def records(self) -> list[dict[str, Any]]:
        """JSON-safe rows, ``side`` as "long" / "short"."""
        rows = _records(self)
        for row in rows:
            row["side"] = SIDES[row["side"]]
        return rows


@dataclass(frozen=True, eq=False)
class EquityCurve:
    """Per-bar equity marked at each close: ``cash + units x close``.

    Holdings only change at fills, so the curve is stored as the holdings before the
    first bar plus the holdings after each fill (``step_*``, at global bar indices;
    the last fill of a bar is what its close sees). ``equity``, ``cash`` and ``units``
    are per-bar arrays computed on first use. ``base`` is the global index of ``ts[0]``.
    """

    ts: IntArray
    close: FloatArray
    base: int
    start: tuple[float, float]
    step_bars: IntArray
    step_cash: FloatArray
    step_units: FloatArray

    def __len__(self) -> int:
        return len(self.ts)

    def _per_bar(self, start: float, after: FloatArray) -> FloatArray:
        edges = np.concatenate(([0], self.step_bars - self.base, [len(self.ts)]))
        return np.repeat(np.concatenate(([start], after)), edges[1:] - edges[:-1])

    @cached_property
    def cash(self) -> FloatArray:
        """Cash at each close."""
        return self._per_bar(self.start[0], self.step_cash)

    @cached_property
    def units(self) -> FloatArray:
        """Signed units held at each close."""
        return self._per_bar(self.start[1], self.step_units)

    @cached_property
    def equity(self) -> FloatArray:
        """Cash plus units marked at each close."""
        equity = self._per_bar(self.start[1], self.step_units)
        equity *= self.close
        equity += self._per_bar(self.start[0], self.step_cash)
        return equity

    def bars_in_market(self) -> int:
        """How many closes see a position (units != 0)."""
        edges = np.concatenate(([0], self.step_bars - self.base, [len(self.ts)]))
        held = np.concatenate(([self.start[1]], self.step_units)) != 0.0
        return int((edges[1:] - edges[:-1])[held].sum())

    @classmethod
    def join(cls, candles: Candles, parts: Sequence[EquityCurve]) -> EquityCurve:
        """The curve over all of ``candles`` from the curves of its consecutive parts."""
        first = parts[0]
        return cls(
            np.asarray(candles.ts),
            np.asarray(candles.close),
            first.base,
            first.start,
            np.concatenate([p.step_bars for p in parts]),
            np.concatenate([p.step_cash for p in parts]),
            np.concatenate([p.step_units for p in parts]),
        )


@dataclass(frozen=True)
class OpenPosition:
    """A position still open after the last bar, marked at its close with no exit fee."""

    side: str
    units: float
    entry_bar: int
    entry_ts: int
    entry_price: float
    fees: float
    mark_price: float
    unrealized_pnl: float
    unrealized_pnl_pct: float

    @classmethod
    def from_state(cls, state: BrokerState, mark_price: float) -> OpenPosition | None:
        """The state's position marked at ``mark_price``, or None when flat."""
        if state.side == 0:
            return None
        units = abs(state.units)
        gross = units * (mark_price - state.entry_price) * state.side
        pnl = gross - state.entry_fees
        return cls(
            SIDES[state.side],
            units,
            state.entry_bar,
            state.entry_ts,
            state.entry_price,
            state.entry_fees,
            mark_price,
            pnl,
            pnl / (units * state.entry_price),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def trades_from_closes(closed: Sequence[Any], fills: Fills) -> Trades:
    """Closed trades from columns (entry bar, entry ts, entry price, entry fees, exit fill)."""
    entry_bar, entry_ts, entry_price, entry_fees, exit_fill = closed
    exit_price, exit_fee = fills.price[exit_fill], fills.fee[exit_fill]
    side = -fills.side[exit_fill]
    units = fills.units[exit_fill]
    pnl = side * units * (exit_price - entry_price) - entry_fees - exit_fee
    return Trades(
        entry_bar,
        entry_ts,
        entry_price,
        fills.bar[exit_fill],
        fills.ts[exit_fill],
        exit_price,
        side,
        units,
        entry_fees + exit_fee,
        pnl,
        pnl / (units * entry_price),
        fills.reason[exit_fill],
    )


def plain_trade(trade: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    """A trade record's ``columns`` as plain JSON values (records may hold numpy scalars).

    Timestamps (``*_ts``) become ints, strings stay, every other value becomes a float.
    """
    out: dict[str, Any] = {}
    for key in columns:
        value = trade[key]
        if key.endswith("_ts"):
            out[key] = int(value)
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = float(value)
    return out
