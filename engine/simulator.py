"""The fill model: turns signals into fills, trades and per-bar equity, resumably.

Per bar t, in order: (1) the order decided on bar t-1's close fills at bar t's open;
(2) the open position's intrabar exits are checked against bar t's range (see
:mod:`engine.stops`); (3) equity is marked at bar t's close; (4) bar t's signal decides
the order for bar t+1's open. Python loops run once per fill, never per bar (see
:mod:`engine.walks`).

Fills: a buy pays ``open x (1 + slippage_bps / 10^4)``, a sell receives ``open x (1 -
slippage_bps / 10^4)`` (stop and target exits the same from their level); commission
is ``fee x units x price`` on every fill. An entry spends the cash (all in), a fraction
of it, or for scaling in ``scale_in x initial capital``: it buys the most units on the
unit grid (whole units, or multiples of ``10^-size_precision`` when fractional) whose
cost plus commission fits; none means no entry. A short is sized like a long and its
proceeds are added to the cash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import walks
from engine.broker import BrokerConfig, BrokerState, Pending, Risk
from engine.candles import Candles
from engine.ledger import (
    FILL_KINDS,
    EquityCurve,
    Fills,
    Trades,
    to_columns,
    trades_from_closes,
)
from engine.signals import Signals

CLOSED_KINDS = (int, int, float, float, int)


@dataclass(frozen=True, eq=False)
class Simulation:
    """The outcome of simulating a run of bars from a state."""

    fills: Fills
    trades: Trades
    equity: EquityCurve
    state: BrokerState


class Run:
    """One simulate() call: the account as it evolves, and the logs of fills and trades.

    Fills are logged as rows ``(bar, side, units, price, fee, reason, cash, units held)``
    with ``bar`` local to the candles, and closed trades as rows ``(entry bar, entry ts,
    entry price, entry fees, exit fill index)``. A walk may also log whole columns at
    once (``blocks``); :meth:`flush` keeps both in order.
    """

    def __init__(
        self,
        candles: Candles,
        signals: Signals,
        risk: Risk,
        config: BrokerConfig,
        state: BrokerState,
    ) -> None:
        self.c, self.signals, self.risk, self.config = candles, signals, risk, config
        self.n = len(candles)
        self.scale_in = signals.scale_in
        self.slip = config.slippage_bps / 10_000.0
        self.fee = config.fee
        self.scale = config.unit_scale
        self.base = state.bars_done
        self.start = (state.cash, state.units)
        self.cash, self.units = state.cash, state.units
        self.entry_price, self.entry_ts = state.entry_price, state.entry_ts
        self.entry_bar, self.entry_fees = state.entry_bar, state.entry_fees
        self.best = state.best_price
        self.pending: Pending | None = state.pending
        self.last_ts = int(candles.ts[-1]) if self.n else state.last_ts
        self.rows: list[tuple[Any, ...]] = []
        self.closed: list[tuple[Any, ...]] = []
        self.blocks: list[list[Any]] = []
        self.closed_blocks: list[list[Any]] = []
        self.flushed = 0  # fills already in blocks

    # --- fills ---------------------------------------------------------------

    def size(self, budget: float, price: float) -> float:
        """Most units, on the unit grid, whose cost plus commission fits in ``budget``."""
        if budget <= 0.0 or price <= 0.0:
            return 0.0
        per_unit = price * (1.0 + self.fee)
        scale = self.scale
        steps = math.floor(budget / per_unit * scale)
        if steps > 0 and steps / scale * per_unit > budget:
            steps -= 1
        return steps / scale if steps > 0 else 0.0

    def budget(self) -> float:
        """What an entry may spend: all the cash, a fraction of it, or the DCA amount."""
        if self.scale_in is not None:
            return min(self.scale_in * self.config.initial_capital, self.cash)
        if self.risk.sizing == "fraction":
            return self.cash * self.risk.fraction
        return self.cash

    def open(self, side: int, bar: int) -> bool:
        """Open a position at ``bar``'s open; False when the budget buys no unit."""
        price = float(self.c.open[bar]) * (1.0 + side * self.slip)
        units = self.size(self.budget(), price)
        if units == 0.0:
            return False
        notional = units * price
        fee = notional * self.fee
        self.cash -= side * notional + fee
        self.units = side * units
        self.entry_price, self.entry_fees, self.best = price, fee, price
        self.entry_ts, self.entry_bar = int(self.c.ts[bar]), self.base + bar
        self.rows.append((bar, side, units, price, fee, "entry", self.cash, self.units))
        return True

    def add(self, bar: int) -> None:
        """Scale into the open long at ``bar``'s open (skipped when cash buys nothing)."""
        price = float(self.c.open[bar]) * (1.0 + self.slip)
        units = self.size(self.budget(), price)
        if units == 0.0:
            return
        notional = units * price
        fee = notional * self.fee
        held = self.units
        self.cash -= notional + fee
        self.units = held + units
        self.entry_price = (held * self.entry_price + notional) / self.units
        self.entry_fees += fee
        self.best = max(self.best, price)
        self.rows.append((bar, 1, units, price, fee, "add", self.cash, self.units))

    def close(self, bar: int, why: str, level: float | None = None) -> None:
        """Close the position at ``bar``: at its open, or at a stop/target ``level``."""
        side = 1 if self.units > 0 else -1
        raw = float(self.c.open[bar]) if level is None else level
        price = raw * (1.0 - side * self.slip)
        units = abs(self.units)
        notional = units * price
        fee = notional * self.fee
        self.cash += side * notional - fee
        exit_fill = self.flushed + len(self.rows)
        self.closed.append(
            (self.entry_bar, self.entry_ts, self.entry_price, self.entry_fees, exit_fill)
        )
        self.units = 0.0
        self.entry_price = self.entry_fees = self.best = 0.0
        self.entry_ts, self.entry_bar = 0, -1
        self.rows.append((bar, -side, units, price, fee, why, self.cash, 0.0))

    def act(self, order: Pending, bar: int) -> None:
        """Execute an order decided on the previous bar's close at ``bar``'s open."""
        if order == "open_long":
            self.open(1, bar)
        elif order == "open_short":
            self.open(-1, bar)
        elif order == "add":
            self.add(bar)
        else:
            side = 1 if self.units > 0 else -1
            self.close(bar, "reverse" if order == "reverse" else "signal")
            if order == "reverse":
                self.open(-side, bar)

    def flush(self) -> None:
        """Move the logged rows into column blocks, keeping the order of fills."""
        if self.rows:
            self.blocks.append(to_columns(self.rows, FILL_KINDS))
            self.flushed += len(self.rows)
            self.rows = []
        if self.closed:
            self.closed_blocks.append(to_columns(self.closed, CLOSED_KINDS))
            self.closed = []

    # --- output ----------------------------------------------------------------

    def result(self) -> Simulation:
        """Logs, the equity marked at every close, and the state to resume from."""
        self.flush()
        c = self.c
        fill_columns = _joined(self.blocks, FILL_KINDS)
        bar, side, units, price, fee, reason, cash, held = fill_columns
        fills = Fills(self.base + bar, c.ts[bar], side, units, price, fee, reason)
        curve = EquityCurve(c.ts, c.close, self.base, self.start, fills.bar, cash, held)
        state = BrokerState(
            cash=self.cash,
            units=self.units,
            entry_price=self.entry_price,
            entry_ts=self.entry_ts,
            entry_bar=self.entry_bar,
            entry_fees=self.entry_fees,
            best_price=self.best,
            pending=self.pending,
            bars_done=self.base + self.n,
            last_ts=self.last_ts,
        )
        closed = _joined(self.closed_blocks, CLOSED_KINDS)
        return Simulation(fills, trades_from_closes(closed, fills), curve, state)


def _joined(blocks: list[list[Any]], kinds: tuple[type, ...]) -> list[Any]:
    if not blocks:
        return to_columns([], kinds)
    if len(blocks) == 1:
        return blocks[0]
    return [np.concatenate(parts) for parts in zip(*blocks, strict=True)]


def simulate(
    candles: Candles,
    signals: Signals,
    risk: Risk,
    config: BrokerConfig,
    state: BrokerState | None = None,
) -> Simulation:
    """Simulate ``candles`` with their ``signals`` from ``state`` (a fresh account if None).

    Feeding the returned state to the next call with the following bars gives exactly
    the trades and equity of one call over all of them. Raises ValueError when the
    lengths differ or the candles do not continue after ``state.last_ts``.
    """
    if len(signals) != len(candles):
        raise ValueError(f"{len(signals)} signals for {len(candles)} candles")
    start = BrokerState.start(config) if state is None else state
    if len(candles) and start.last_ts is not None and int(candles.ts[0]) <= start.last_ts:
        raise ValueError("candles must start after the state's last bar")
    run = Run(candles, signals, risk, config, start)
    walks.run(run)
    return run.result()
