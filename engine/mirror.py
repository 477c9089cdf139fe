"""Following another run's fills: a mirror's paper account copies its source's trades.

A mirror does not compute signals. On every bar its source simulated, it makes the fills
its source made, in the same order and on the same bar, through the same paper broker
(:class:`engine.simulator.Run`: the mirror's own fee, slippage and unit grid):

- **Entries and adds** happen at the bar's open, like the source's. The source's stake,
  what the fill cost it (notional plus commission) over the cash it had just before, is
  applied to the mirror's own cash, so the mirror's position is the source's sized to
  the mirror's account: with equal costs, ``mirror units = source units x mirror cash /
  source cash``, floored to the unit grid. A mirror only opens when flat and only adds
  to a long it holds: it never takes over a position its source opened before it
  followed (it waits for the source's next entry).
- **Exits** close the mirror's whole position with the source's reason: at the bar's
  open for a signal or a reversal, at the source's stop or target level otherwise
  (the source's fill price with its slippage taken off, then the mirror's put on).
- **Resync.** A mirror that missed some of its source's bars (a failed tick, a pause)
  and holds a side its source no longer holds closes at the next bar's open.

Pure: the caller loads the candles and the source's simulation and persists the result
(``workers/mirror_ticks.py``). See docs/execution.md, "Mirrors".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.broker import BrokerConfig, BrokerState, Risk
from engine.candles import Candles
from engine.ledger import FloatArray, IntArray, StrArray
from engine.signals import Signals
from engine.simulator import Run, Simulation

# Exits that fill at the bar's open; the others fill at a stop or target level.
OPEN_EXITS = ("signal", "reverse")
# Grid steps of rounding error tolerated when a stake is turned back into units.
STEP_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class SourceOrders:
    """A source's fills as orders a mirror can copy, in fill order.

    ``kind`` is ``entry``, ``add`` or ``exit``; ``side`` the position side the fill opens,
    adds to or closes (+1 long, -1 short); ``stake`` (entries and adds) the fill's cost over
    the source's cash just before it; ``price`` the source's fill price and ``slippage_bps``
    the source's slippage, to recover a stop level; ``end_side`` the source's side after
    its last bar.
    """

    ts: IntArray
    kind: StrArray
    side: IntArray
    stake: FloatArray
    price: FloatArray
    reason: StrArray
    slippage_bps: float
    end_side: int

    def __len__(self) -> int:
        return len(self.ts)


def source_orders(sim: Simulation, slippage_bps: float) -> SourceOrders:
    """The fills of a source's simulation as :class:`SourceOrders`."""
    fills, curve = sim.fills, sim.equity
    n = len(fills)
    cash_before = np.empty(n)
    held_before = np.empty(n)
    if n:
        cash_before[0], held_before[0] = curve.start
        cash_before[1:] = curve.step_cash[:-1]
        held_before[1:] = curve.step_units[:-1]
    reason = fills.reason
    opening = (reason == "entry") | (reason == "add")
    kind = np.where(reason == "entry", "entry", np.where(reason == "add", "add", "exit"))
    side = np.where(opening, fills.side, np.sign(held_before).astype(np.int64))
    cost = fills.units * fills.price + fills.fee
    with np.errstate(divide="ignore", invalid="ignore"):
        stake = np.where(opening & (cash_before > 0), cost / cash_before, 0.0)
    return SourceOrders(
        ts=np.asarray(fills.ts, dtype=np.int64),
        kind=kind.astype(np.str_),
        side=side.astype(np.int64),
        stake=stake.astype(np.float64),
        price=np.asarray(fills.price, dtype=np.float64),
        reason=reason,
        slippage_bps=slippage_bps,
        end_side=sim.state.side,
    )


class _Follower(Run):
    """A paper account whose entries are sized by the source's stake, not by a risk budget."""

    stake = 0.0

    def budget(self) -> float:
        """An entry may spend at most the cash; the stake decides how much of it."""
        return self.cash

    def size(self, budget: float, price: float) -> float:
        """Units on the grid for ``stake x budget``, never more than ``budget`` affords."""
        if budget <= 0.0 or price <= 0.0 or self.stake <= 0.0:
            return 0.0
        per_unit = price * (1.0 + self.fee)
        scale = self.scale
        wanted = math.floor(self.stake * budget / per_unit * scale + STEP_TOLERANCE)
        affordable = math.floor(budget / per_unit * scale)
        steps = min(wanted, affordable)
        if steps > 0 and steps / scale * per_unit > budget:
            steps -= 1
        return steps / scale if steps > 0 else 0.0

    def close_at(self, bar: int, why: str, price: float) -> None:
        """Close the whole position at ``bar`` at a fill ``price`` (slippage already in it)."""
        side = 1 if self.units > 0 else -1
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

    def held(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return (self.units > 0) - (self.units < 0)


def _exit(book: _Follower, orders: SourceOrders, k: int, bar: int) -> None:
    reason = str(orders.reason[k])
    if reason in OPEN_EXITS:
        book.close(bar, reason)
        return
    side = int(orders.side[k])
    mine = book.config.slippage_bps
    price = float(orders.price[k])
    if mine != orders.slippage_bps:
        level = price / (1.0 - side * orders.slippage_bps / 10_000.0)
        price = level * (1.0 - side * mine / 10_000.0)
    book.close_at(bar, reason, price)


def follow(
    candles: Candles, orders: SourceOrders, config: BrokerConfig, state: BrokerState
) -> Simulation:
    """Simulate a mirror's ``candles`` from ``state``, copying the source's ``orders``.

    Orders on bars outside ``candles`` are ignored (bars before the mirror followed).
    Raises ValueError when the candles do not continue after ``state.last_ts``.
    """
    if len(candles) and state.last_ts is not None and int(candles.ts[0]) <= state.last_ts:
        raise ValueError("candles must start after the state's last bar")
    book = _Follower(candles, Signals.none(len(candles)), Risk(), config, state)
    if book.n == 0:
        return book.result()
    pending, book.pending = book.pending, None
    if pending is not None and book.units != 0.0:
        book.close(0, "signal")  # the resync decided on the last tick
    bars = np.searchsorted(candles.ts, orders.ts)
    for k in range(len(orders)):
        bar = int(bars[k])
        if bar >= book.n or int(candles.ts[bar]) != int(orders.ts[k]):
            continue
        kind, side = str(orders.kind[k]), int(orders.side[k])
        held = book.held()
        if kind == "exit" and held == side:
            _exit(book, orders, k, bar)
        elif kind == "entry" and held == 0:
            book.stake = float(orders.stake[k])
            book.open(side, bar)
        elif kind == "add" and held == 1:
            book.stake = float(orders.stake[k])
            book.add(bar)
    if book.held() not in (0, orders.end_side):
        book.pending = "close"
    return book.result()
