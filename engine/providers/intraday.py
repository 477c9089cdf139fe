"""Intraday activity shapes of the synthetic world, one value per UTC minute of the day."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MINUTES_PER_DAY = 1440


def _window(hours: NDArray[np.float64], start: float, end: float) -> NDArray[np.float64]:
    # Smooth edges (a quarter-hour ramp) rather than a step, as liquidity builds and fades.
    rise = 1.0 / (1.0 + np.exp(-(hours - start) / 0.25))
    fall = 1.0 / (1.0 + np.exp(-(end - hours) / 0.25))
    return np.asarray(rise * fall, dtype=np.float64)


def _crypto(hours: NDArray[np.float64]) -> NDArray[np.float64]:
    # Round the clock, with a mild peak while Europe and the US are both awake.
    return np.asarray(1.0 + 0.3 * np.cos(2.0 * np.pi * (hours - 15.0) / 24.0), dtype=np.float64)


def _fx(hours: NDArray[np.float64]) -> NDArray[np.float64]:
    tokyo = 0.35 * _window(hours, 0.0, 9.0)
    london = 0.8 * _window(hours, 7.0, 16.0)
    new_york = 0.7 * _window(hours, 12.5, 21.0)
    # The London/New York overlap gets both bumps, which is where FX volume peaks.
    return np.asarray(0.3 + tokyo + london + new_york, dtype=np.float64)


def _equity(hours: NDArray[np.float64]) -> NDArray[np.float64]:
    open_h, close_h = 13.5, 20.0
    in_session = (hours >= open_h) & (hours < close_h)
    # U-shape: the opening auction and the run into the close carry the most volume.
    u_shape = 1.0 + 2.0 * np.exp(-(hours - open_h) / 0.35) + 1.5 * np.exp(-(close_h - hours) / 0.4)
    pre_market = (hours >= 8.0) & (hours < open_h)
    after_hours = (hours >= close_h) & (hours < 24.0)
    shape = np.where(in_session, u_shape, 0.03)
    shape = np.where(pre_market, 0.08, shape)
    shape = np.where(after_hours, 0.06, shape)
    return np.asarray(shape, dtype=np.float64)


def activity_profile(kind: str) -> NDArray[np.float64]:
    """Relative trading activity per UTC minute of the day for ``kind``; shape (1440,), mean 1.

    Raises ValueError for an unknown kind.
    """
    hours = (np.arange(MINUTES_PER_DAY, dtype=np.float64) + 0.5) / 60.0
    shapes = {"crypto": _crypto, "fx": _fx, "equity": _equity}
    if kind not in shapes:
        raise ValueError(f"no intraday profile for kind {kind!r}")
    shape = shapes[kind](hours)
    return np.asarray(shape / shape.mean(), dtype=np.float64)
