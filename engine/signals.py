"""Trading signals per bar and the crossing rule every strategy shares.

A signal at bar t is decided on bar t's close from bars <= t only; the backtester acts on
it at bar t + 1's open.

Crossing rule (a tie is no cross): with ``d = a - b``, ``a`` crosses above ``b`` at bar t
iff ``d[t] > 0`` and the most recent earlier bar with a non-zero, non-NaN ``d`` had
``d < 0``. Bars where ``d`` is 0 (a tie) or NaN (warm-up) are skipped, so
``d = -1, 0, +1`` crosses at the third bar, ``-1, 0, -1`` never crosses and nothing
crosses on the tie itself. Crossing below mirrors it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BoolArray = NDArray[np.bool_]
_COLUMNS = ("long_entry", "long_exit", "short_entry", "short_exit")
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Signals:
    """Per-bar boolean intents decided on each bar's close (equal-length 1-D arrays).

    ``scale_in``, when set, makes every ``long_entry`` buy ``scale_in`` x initial capital
    (as much as the cash allows), adding to an open long instead of being ignored; risk
    sizing does not apply then. Used by periodic DCA.
    """

    long_entry: BoolArray
    long_exit: BoolArray
    short_entry: BoolArray
    short_exit: BoolArray
    scale_in: float | None = None

    def __post_init__(self) -> None:
        lengths = set()
        for name in _COLUMNS:
            column = np.asarray(getattr(self, name), dtype=np.bool_)
            if column.ndim != 1:
                raise ValueError(f"{name} must be 1-D")
            object.__setattr__(self, name, column)
            lengths.add(len(column))
        if len(lengths) != 1:
            raise ValueError(f"signal columns differ in length: {sorted(lengths)}")
        if self.scale_in is not None and not 0.0 < self.scale_in <= 1.0:
            raise ValueError("scale_in must be in (0, 1]")

    def __len__(self) -> int:
        return len(self.long_entry)

    @classmethod
    def none(cls, n: int) -> Signals:
        """No signal on any of ``n`` bars."""
        nothing = np.zeros(n, dtype=np.bool_)
        return cls(nothing, nothing, nothing, nothing)

    def slice(self, start: int, stop: int) -> Signals:
        """The signals of bars ``start..stop-1`` (views; the columns are already checked)."""
        part = object.__new__(Signals)
        for name in _COLUMNS:
            object.__setattr__(part, name, getattr(self, name)[start:stop])
        object.__setattr__(part, "scale_in", self.scale_in)
        return part


def crossings(a: FloatArray, b: FloatArray | float) -> tuple[BoolArray, BoolArray]:
    """Bars where ``a`` crosses above and below ``b`` under the tie-skipping rule above."""
    d = np.asarray(a, dtype=np.float64) - b
    n = len(d)
    above = np.zeros(n, dtype=np.bool_)
    below = np.zeros(n, dtype=np.bool_)
    if n < 2:
        return above, below
    positive = d > 0
    negative = d < 0
    informative = positive | negative
    first = int(np.argmax(informative))
    if informative[first:].all():
        # Common case: no tie or gap after warm-up, so the previous bar decides.
        np.logical_and(positive[1:], negative[:-1], out=above[1:])
        np.logical_and(negative[1:], positive[:-1], out=below[1:])
        return above, below
    index = np.where(informative, np.arange(n), -1)
    last = np.maximum.accumulate(index)
    previous = np.empty(n, dtype=np.int64)
    previous[0] = -1
    previous[1:] = last[:-1]
    known = previous >= 0
    safe = np.where(known, previous, 0)
    np.logical_and(positive, known & negative[safe], out=above)
    np.logical_and(negative, known & positive[safe], out=below)
    return above, below


def crosses_above(a: FloatArray, b: FloatArray | float) -> BoolArray:
    """Bars where ``a`` crosses above ``b`` (see the module docstring for ties)."""
    return crossings(a, b)[0]


def crosses_below(a: FloatArray, b: FloatArray | float) -> BoolArray:
    """Bars where ``a`` crosses below ``b`` (see the module docstring for ties)."""
    return crossings(a, b)[1]
