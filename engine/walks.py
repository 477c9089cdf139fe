"""Walks from one signal event to the next: where positions open, add, close and reverse.

Signals become events first: long only, an entry counts on bars with ``long_entry``
and not ``long_exit`` (both at once cancel out); long/short, a bar that wants both a
long and a short does neither, a wanted short closes a long (a reversal) and vice
versa. The general walk then jumps between events with index searches and scans the
held bars for stops. Long-only runs without intrabar exits or scaling in take the plain
walk: every entry and exit is found with numpy and only the sizing runs in Python, with
exactly the arithmetic of the general walk.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine import stops
from engine.broker import Pending, Risk
from engine.ledger import FloatArray, IntArray
from engine.signals import BoolArray, Signals

if TYPE_CHECKING:
    from engine.simulator import Run


@dataclass(frozen=True, eq=False)
class Events:
    """Bars whose close signal opens, closes (maybe reversing) or adds to a position."""

    go_long: IntArray
    go_short: IntArray
    exit_long: IntArray
    exit_short: IntArray
    reverse_long: BoolArray
    reverse_short: BoolArray


def events(signals: Signals, risk: Risk) -> Events:
    """Resolve the four signal columns into actions; conflicting intents cancel out."""
    want_long = signals.long_entry & ~signals.long_exit
    if risk.direction == "long_only":
        never = np.zeros(len(signals), dtype=np.bool_)
        none = np.empty(0, dtype=np.int64)
        exits = np.flatnonzero(signals.long_exit)
        return Events(np.flatnonzero(want_long), none, exits, none, never, never)
    want_short = signals.short_entry & ~signals.short_exit
    go_long = want_long & ~want_short
    go_short = want_short & ~want_long
    return Events(
        np.flatnonzero(go_long),
        np.flatnonzero(go_short),
        np.flatnonzero(signals.long_exit | go_short),
        np.flatnonzero(signals.short_exit | go_long),
        go_short,
        go_long,
    )


def _next(bars: list[int], start: int) -> int | None:
    """The first event at or after ``start``, or None."""
    i = bisect_left(bars, start)
    return bars[i] if i < len(bars) else None


def run(book: Run) -> None:
    """Execute the pending order, then walk the events to the last bar."""
    if book.n == 0:
        return
    order, book.pending = book.pending, None
    if order is not None:
        book.act(order, 0)
    ev = events(book.signals, book.risk)
    plain = not (book.risk.has_exits or book.risk.direction == "long_short" or book.scale_in)
    cursor: int | None = walk_plain(book, ev) if plain else 0
    if cursor is not None:
        walk(book, ev, cursor)


def walk(book: Run, ev: Events, cursor: int) -> None:
    """The general walk; ``cursor`` is the first bar held and whose signal is unused."""
    n, risk = book.n, book.risk
    go_long, go_short = ev.go_long.tolist(), ev.go_short.tolist()
    exit_long, exit_short = ev.exit_long.tolist(), ev.exit_short.tolist()
    while True:
        if book.units == 0.0:
            at_long, at_short = _next(go_long, cursor), _next(go_short, cursor)
            if at_short is not None and (at_long is None or at_short < at_long):
                side, bar = -1, at_short
            elif at_long is not None:
                side, bar = 1, at_long
            else:
                return
            if bar == n - 1:
                book.pending = "open_long" if side > 0 else "open_short"
                return
            book.open(side, bar + 1)
            cursor = bar + 1
            continue
        is_long = book.units > 0
        exit_at = _next(exit_long if is_long else exit_short, cursor)
        add_at = _next(go_long, cursor) if is_long and book.scale_in else None
        if add_at is not None and exit_at is not None and add_at > exit_at:
            add_at = None
        upto = add_at if add_at is not None else exit_at
        if risk.has_exits:
            span = (cursor, n - 1 if upto is None else upto)
            hit, book.best = stops.scan(
                book.c,
                span,
                side=1 if is_long else -1,
                entry=book.entry_price,
                best=book.best,
                risk=risk,
            )
            if hit is not None:
                book.close(hit.bar, hit.reason, hit.price)
                cursor = hit.bar
                continue
        if upto is None:
            return
        order: Pending = "add" if add_at is not None else _exit_order(ev, is_long, upto, risk)
        if upto == n - 1:
            book.pending = order
            return
        book.act(order, upto + 1)
        cursor = upto + 1


def _exit_order(ev: Events, is_long: bool, bar: int, risk: Risk) -> Pending:
    if risk.direction == "long_only":
        return "close"
    reverse = (ev.reverse_long if is_long else ev.reverse_short)[bar]
    return "reverse" if reverse else "close"


def walk_plain(book: Run, ev: Events) -> int | None:
    """Long only, no intrabar exits, no scaling in: positions follow from the signals.

    An entry counts when the previous event was an exit, and vice versa; each fills at
    the next bar's open. Returns None when done, or the signal bar to resume the general
    walk from when an entry cannot buy a single unit (later entries then count).
    """
    n = book.n
    bars = np.concatenate((ev.go_long, ev.exit_long))
    buys = np.zeros(len(bars), dtype=np.bool_)
    buys[: len(ev.go_long)] = True
    order = np.argsort(bars, kind="stable")
    bars, buys = bars[order], buys[order]
    before = np.empty_like(buys)
    before[:1] = book.units > 0
    before[1:] = buys[:-1]
    changes = buys != before
    bars, buys = bars[changes], buys[changes]
    pending: Pending | None = None
    if len(bars) and bars[-1] == n - 1:
        pending = "open_long" if buys[-1] else "close"
        bars, buys = bars[:-1], buys[:-1]
    fills = bars + 1
    raw = book.c.open[fills]
    prices = np.where(buys, raw * (1.0 + book.slip), raw * (1.0 - book.slip))
    done, cash, units = _size_plain(book, buys.tolist(), prices.tolist())
    book.flush()
    _log_plain(
        book,
        fills[:done],
        buys[:done],
        prices=prices[:done],
        units=np.array(units, dtype=np.float64),
        cash=np.array(cash, dtype=np.float64),
    )
    if done < len(fills):
        return int(fills[done]) - 1
    book.pending = pending
    return None


def _size_plain(
    book: Run, buys: list[bool], prices: list[float]
) -> tuple[int, list[float], list[float]]:
    """Sizes alternating entries and exits in order: (fills done, cash after, units traded).

    The same arithmetic as ``Run.open`` / ``Run.close`` for a long, inlined.
    """
    cash, held = book.cash, book.units
    fee, scale, fraction = book.fee, book.scale, None
    if book.risk.sizing == "fraction":
        fraction = book.risk.fraction
    per_unit_factor = 1.0 + fee
    cash_after: list[float] = []
    traded: list[float] = []
    for buy, price in zip(buys, prices, strict=True):
        if buy:
            budget = cash if fraction is None else cash * fraction
            if budget <= 0.0 or price <= 0.0:
                break
            per_unit = price * per_unit_factor
            steps = math.floor(budget / per_unit * scale)
            if steps > 0 and steps / scale * per_unit > budget:
                steps -= 1
            if steps <= 0:
                break
            held = steps / scale
            notional = held * price
            cash -= notional + notional * fee
        else:
            notional = held * price
            cash += notional - notional * fee
        cash_after.append(cash)
        traded.append(held)
    return len(cash_after), cash_after, traded


def _log_plain(
    book: Run,
    bars: IntArray,
    buys: BoolArray,
    *,
    prices: FloatArray,
    units: FloatArray,
    cash: FloatArray,
) -> None:
    """Log the plain walk's fills and trades as column blocks and update the account."""
    count = len(bars)
    if count == 0:
        return
    fees = units * prices * book.fee
    held = np.where(buys, units, 0.0)
    reasons = np.where(buys, "entry", "signal")
    book.blocks.append([bars, np.where(buys, 1, -1), units, prices, fees, reasons, cash, held])
    exits = np.flatnonzero(~buys)
    entries = exits - 1
    carried = len(exits) > 0 and exits[0] == 0  # the first fill closes a position from before
    first = 1 if carried else 0
    entry_bars = np.empty(len(exits), dtype=np.int64)
    entry_ts = np.empty(len(exits), dtype=np.int64)
    entry_prices, entry_fees = np.empty(len(exits)), np.empty(len(exits))
    if carried:
        entry_bars[0], entry_ts[0] = book.entry_bar, book.entry_ts
        entry_prices[0], entry_fees[0] = book.entry_price, book.entry_fees
    opened = entries[first:]
    entry_bars[first:] = book.base + bars[opened]
    entry_ts[first:] = book.c.ts[bars[opened]]
    entry_prices[first:] = prices[opened]
    entry_fees[first:] = fees[opened]
    book.closed_blocks.append(
        [entry_bars, entry_ts, entry_prices, entry_fees, book.flushed + exits]
    )
    book.flushed += count
    book.cash, book.units = float(cash[-1]), float(held[-1])
    if buys[-1]:
        last = int(bars[-1])
        book.entry_price = book.best = float(prices[-1])
        book.entry_fees = float(fees[-1])
        book.entry_ts, book.entry_bar = int(book.c.ts[last]), book.base + last
    else:
        book.entry_price = book.entry_fees = book.best = 0.0
        book.entry_ts, book.entry_bar = 0, -1
