"""OHLCV candles as columns of numpy arrays, their validation and resampling.

Timestamps are bucket open times in epoch milliseconds (UTC). Every column of a
:class:`Candles` is a read-only view, so a provider can hand out slices of its
caches without a caller being able to corrupt them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

TIMEFRAMES: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}

_VALUE_COLUMNS = ("open", "high", "low", "close", "volume")


class CandleError(ValueError):
    """Candle data that breaks an OHLCV invariant."""


def _frozen(values: Any, dtype: type[np.generic]) -> Any:
    column = np.asarray(values, dtype=dtype)
    if column.ndim != 1:
        raise CandleError(f"candle columns must be 1-D, got shape {column.shape}")
    # A view, so freezing it never flips the flag on an array the caller still owns.
    view = column.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True)
class Candles:
    """Columns of OHLCV bars; ``ts`` is the bucket open time in epoch ms, strictly increasing.

    Columns are stored as read-only int64 / float64 views; ``==`` compares values.
    Construction checks shapes only: call :meth:`validate` for the OHLCV rules.
    """

    ts: NDArray[np.int64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    close: NDArray[np.float64]
    volume: NDArray[np.float64]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _frozen(self.ts, np.int64))
        for name in _VALUE_COLUMNS:
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        lengths = {len(getattr(self, name)) for name in ("ts", *_VALUE_COLUMNS)}
        if len(lengths) != 1:
            raise CandleError(f"candle columns differ in length: {sorted(lengths)}")

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Candles):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("ts", *_VALUE_COLUMNS)
        )

    def __hash__(self) -> int:
        raise TypeError("Candles hold arrays, so they are not hashable")

    @classmethod
    def empty(cls) -> Candles:
        """No candles."""
        no_floats = np.empty(0, dtype=np.float64)
        return cls(
            np.empty(0, dtype=np.int64), no_floats, no_floats, no_floats, no_floats, no_floats
        )

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> Candles:
        """Candles from ``[[ts_ms, open, high, low, close, volume], ...]`` (not validated).

        Raises CandleError when a row does not have six numbers or a ts is not whole ms.
        """
        if len(rows) == 0:
            return cls.empty()
        try:
            table = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise CandleError(f"rows must be six numbers each: {exc}") from exc
        if table.ndim != 2 or table.shape[1] != 6:
            raise CandleError(f"rows must be six numbers each, got shape {table.shape}")
        ts = table[:, 0].astype(np.int64)
        if not np.array_equal(ts, table[:, 0]):
            raise CandleError("timestamps must be whole epoch milliseconds")
        return cls(ts, table[:, 1], table[:, 2], table[:, 3], table[:, 4], table[:, 5])

    def to_rows(self) -> list[list[float]]:
        """``[[ts_ms, o, h, l, c, v], ...]`` with ts a Python int and the rest Python floats."""
        columns = (self.ts, self.open, self.high, self.low, self.close, self.volume)
        return [list(row) for row in zip(*(column.tolist() for column in columns), strict=True)]

    def between(self, start_ms: int, end_ms: int) -> Candles:
        """The candles with ``start_ms <= ts < end_ms``."""
        first = int(np.searchsorted(self.ts, start_ms, side="left"))
        return self.slice(first, max(first, int(np.searchsorted(self.ts, end_ms, side="left"))))

    def slice(self, start: int, stop: int) -> Candles:
        """The candles at positions ``start..stop-1`` (read-only views, no copy).

        The columns are already checked, typed and frozen, so the part skips
        ``__post_init__``: live ticks slice thousands of times per candle.
        """
        part = object.__new__(Candles)
        for name in ("ts", *_VALUE_COLUMNS):
            object.__setattr__(part, name, getattr(self, name)[start:stop])
        return part

    def validate(self) -> None:
        """Raise CandleError naming the first bad row and the rule it breaks.

        Rules: every value finite, low <= min(open, close), high >= max(open, close),
        volume >= 0, ts strictly increasing.
        """
        problem = _first_problem(self)
        if problem is not None:
            index, reason = problem
            raise CandleError(f"candle {index} (ts {int(self.ts[index])}): {reason}")


def _first_problem(candles: Candles) -> tuple[int, str] | None:
    """Index of of the first invalid candle and why, or None when all are valid."""
    n = len(candles)
    if n == 0:
        return None
    o, h, lo, c, v = candles.open, candles.high, candles.low, candles.close, candles.volume
    later = np.zeros(n, dtype=bool)
    later[1:] = np.diff(candles.ts) <= 0
    # Order matters: at one index the first failing rule is the one reported, so
    # non-finite values are named before the comparisons they would confuse.
    rules: list[tuple[NDArray[np.bool_], str]] = [
        (~np.isfinite(o), "open {o} is not finite"),
        (~np.isfinite(h), "high {h} is not finite"),
        (~np.isfinite(lo), "low {l} is not finite"),
        (~np.isfinite(c), "close {c} is not finite"),
        (~np.isfinite(v), "volume {v} is not finite"),
        (lo > o, "low {l} is above open {o}"),
        (lo > c, "low {l} is above close {c}"),
        (h < o, "high {h} is below open {o}"),
        (h < c, "high {h} is below close {c}"),
        (v < 0, "volume {v} is negative"),
        (later, "ts is not after the previous ts {prev}"),
    ]
    masks = np.vstack([mask for mask, _ in rules])
    bad = masks.any(axis=0)
    if not bad.any():
        return None
    index = int(np.argmax(bad))
    template = rules[int(np.argmax(masks[:, index]))][1]
    values = {
        "o": float(o[index]),
        "h": float(h[index]),
        "l": float(lo[index]),
        "c": float(c[index]),
        "v": float(v[index]),
        "prev": int(candles.ts[index - 1]) if index else None,
    }
    return index, template.format(**values)


def resample(candles: Candles, step_ms: int) -> Candles:
    """OHLCV bars on epoch-aligned UTC buckets of ``step_ms``; empty buckets are omitted.

    First open, max high, min low, last close and summed volume per bucket. The input
    must have strictly increasing ts; raises CandleError otherwise or if step_ms <= 0.
    """
    if step_ms <= 0:
        raise CandleError(f"step_ms must be positive, got {step_ms}")
    if len(candles) == 0:
        return Candles.empty()
    if np.any(np.diff(candles.ts) <= 0):
        raise CandleError("resample needs strictly increasing timestamps")
    buckets = candles.ts // step_ms * step_ms
    # Sorted input puts each bucket's rows in one run, so reduceat over run starts works.
    starts = np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))
    ends = np.append(starts[1:], len(candles)) - 1
    return Candles(
        buckets[starts],
        candles.open[starts],
        np.maximum.reduceat(candles.high, starts),
        np.minimum.reduceat(candles.low, starts),
        candles.close[ends],
        np.add.reduceat(candles.volume, starts),
    )
