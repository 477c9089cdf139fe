"""Small builders for hand-computed backtest cases (not a test module)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.signals import Signals

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
M = 60_000


def candles(ohlc: Sequence[tuple[float, float, float, float]], step: int = M) -> Candles:
    """Candles at T0, T0 + step, ... from (open, high, low, close) tuples."""
    return Candles.from_rows(
        [[T0 + i * step, o, h, lo, c, 1.0] for i, (o, h, lo, c) in enumerate(ohlc)]
    )


def flat(opens: Sequence[float]) -> Candles:
    """Bars that open and close at the same price with a 1-wide range."""
    return candles([(o, o + 1, o - 1, o) for o in opens])


def mask(n: int, bars: Iterable[int]) -> np.ndarray:
    out = np.zeros(n, dtype=np.bool_)
    out[list(bars)] = True
    return out


def signals(
    n: int,
    entry: Iterable[int] = (),
    exit_: Iterable[int] = (),
    short_entry: Iterable[int] = (),
    short_exit: Iterable[int] = (),
    scale_in: float | None = None,
) -> Signals:
    """Signals firing on the given bars."""
    return Signals(
        mask(n, entry), mask(n, exit_), mask(n, short_entry), mask(n, short_exit), scale_in
    )


def btc(minutes: int, start: int = T0) -> Candles:
    """Synthetic BTC-USD 1m candles."""
    return SyntheticProvider().candles(SYNTHETIC_INSTRUMENTS[0], start, start + minutes * M)


def head(bars: Candles, stop: int, start: int = 0) -> Candles:
    """Bars ``start..stop-1``."""
    return Candles(
        *(
            getattr(bars, name)[start:stop]
            for name in ("ts", "open", "high", "low", "close", "volume")
        )
    )
