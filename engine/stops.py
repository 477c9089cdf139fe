"""Intrabar exits: where stop loss, trailing stop and take profit trigger, and at what price.

Levels come from the position's average entry fill price p (long shown; a short mirrors
every comparison): stop loss ``p * (1 - stop_loss)``; take profit ``p * (1 +
take_profit)``; trailing stop ``best * (1 - trailing_stop)``, where ``best`` is the
highest of p and the highs of the bars *before* the current one since entry, so a bar's
own high never moves its own stop (no intrabar look-ahead). The effective stop is the
tighter of stop loss and trailing stop. On every bar the position is held, the entry
bar included, a long stops out when ``low <= stop`` and fills at ``min(open, stop)``
(the open when the bar gaps through it); it takes profit when ``high >= target`` at
``max(open, target)``. When one bar touches both, the stop wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.broker import Risk
from engine.candles import Candles

_FIRST_SLICE = 64


@dataclass(frozen=True)
class Hit:
    """An intrabar exit: the bar, the price before slippage and the reason."""

    bar: int
    price: float
    reason: str


def levels(risk: Risk, side: int, entry_price: float) -> tuple[float, float]:
    """Fixed stop-loss and take-profit levels (+-inf when unset) of a position."""
    sl, tp = risk.stop_loss, risk.take_profit
    if side > 0:
        stop = entry_price * (1.0 - sl) if sl is not None else -math.inf
        target = entry_price * (1.0 + tp) if tp is not None else math.inf
    else:
        stop = entry_price * (1.0 + sl) if sl is not None else math.inf
        # A short's price cannot fall 100 % or more, so such a target never fills.
        target = entry_price * (1.0 - tp) if tp is not None and tp < 1.0 else -math.inf
    return stop, target


def scan(
    candles: Candles,
    span: tuple[int, int],
    *,
    side: int,
    entry: float,
    best: float,
    risk: Risk,
) -> tuple[Hit | None, float]:
    """The first exit on bars ``span[0]..span[1]`` (inclusive) and the best price.

    ``entry`` is the average entry price, ``best`` the best price before ``span[0]``.

    Scans in doubling slices, so a position closed early costs little. The best price
    returned has advanced through the last bar scanned (tracked for trailing stops only).
    """
    first, last = span
    stop, target = levels(risk, side, entry)
    lo, width = first, _FIRST_SLICE
    while lo <= last:
        hi = min(last + 1, lo + width)
        hit, best = _scan_slice(candles, (lo, hi), side, (stop, target, best), risk)
        if hit is not None:
            return hit, best
        lo, width = hi, width * 2
    return None, best


def _scan_slice(
    candles: Candles,
    bounds: tuple[int, int],
    side: int,
    marks: tuple[float, float, float],
    risk: Risk,
) -> tuple[Hit | None, float]:
    lo, hi = bounds
    fixed_stop, target, best = marks
    trailing = risk.trailing_stop
    opens = candles.open[lo:hi]
    highs, lows = candles.high[lo:hi], candles.low[lo:hi]
    favour, adverse = (highs, lows) if side > 0 else (lows, highs)
    tighter = np.maximum if side > 0 else np.minimum
    stop: Any = fixed_stop
    trail: Any = None
    if trailing is not None:
        extreme = tighter.accumulate(favour)
        before = np.empty(hi - lo)
        before[0] = best
        tighter(extreme[:-1], best, out=before[1:])
        trail = before * (1.0 - side * trailing)
        stop = tighter(trail, fixed_stop)
        best = float(tighter(best, extreme[-1]))
    stopped = adverse <= stop if side > 0 else adverse >= stop
    took = favour >= target if side > 0 else favour <= target
    hits = stopped | took
    if not hits.any():
        return None, best
    k = int(np.argmax(hits))
    opening = float(opens[k])
    if stopped[k]:
        level = float(stop[k]) if trail is not None else fixed_stop
        trailed = trail is not None and float(trail[k]) * side > fixed_stop * side
        price = min(opening, level) if side > 0 else max(opening, level)
        return Hit(lo + k, price, "trailing_stop" if trailed else "stop_loss"), best
    price = max(opening, target) if side > 0 else min(opening, target)
    return Hit(lo + k, price, "take_profit"), best
