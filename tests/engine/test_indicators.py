"""Indicators: hand-computed small cases, and direct window computations on long series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine import indicators

NAN = math.nan


def random_walk(n: int, seed: int = 7, level: float = 60_000.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * np.exp(np.cumsum(rng.standard_normal(n) * 0.0005))


def direct(x: np.ndarray, period: int, reduce: str) -> np.ndarray:
    out = np.full(len(x), np.nan)
    out[period - 1 :] = getattr(sliding_window_view(x, period), reduce)(axis=1)
    return out


def loop_smoothing(x: list[float], period: int, alpha: float) -> list[float]:
    out = [NAN] * len(x)
    value = sum(x[:period]) / period
    out[period - 1] = value
    for i in range(period, len(x)):
        value = alpha * x[i] + (1.0 - alpha) * value
        out[i] = value
    return out


def test_sma_small() -> None:
    out = indicators.sma(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    np.testing.assert_array_equal(out, [NAN, NAN, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(indicators.sma(np.array([1.0, 2.0]), 3), [NAN, NAN])
    np.testing.assert_array_equal(indicators.sma(np.array([4.0, 6.0]), 1), [4.0, 6.0])


@pytest.mark.parametrize("period", [2, 50, 200, 1000])
def test_sma_matches_direct_window_mean_on_a_million_bars(period: int) -> None:
    x = random_walk(1_000_000)
    expected = direct(x, period, "mean")
    out = indicators.sma(x, period)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out[period - 1 :], expected[period - 1 :], rtol=1e-12, atol=0)


def test_sma_does_not_drift_where_a_running_cumsum_does() -> None:
    x = random_walk(1_000_000, seed=3)
    period = 50
    expected = direct(x, period, "mean")
    cumulative = np.cumsum(x)
    naive = (cumulative[period:] - cumulative[:-period]) / period
    naive_error = np.max(np.abs(naive / expected[period:] - 1.0))
    error = np.nanmax(np.abs(indicators.sma(x, period) / expected - 1.0))
    assert naive_error > 1e-12  # the test can tell drift apart
    assert error < 1e-13


def test_sma_skips_leading_nan_warm_up() -> None:
    x = np.array([NAN, NAN, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(indicators.sma(x, 2), [NAN, NAN, NAN, 1.5, 2.5, 3.5])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_period_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="period"):
        indicators.sma(np.ones(5), bad)  # type: ignore[arg-type]


def test_ema_small() -> None:
    # alpha = 0.5, seeded with mean(1, 2, 3) = 2 at index 2.
    out = indicators.ema(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    np.testing.assert_array_equal(out, [NAN, NAN, 2.0, 3.0, 4.0])


@pytest.mark.parametrize("period", [1, 2, 12, 200])
def test_ema_matches_a_plain_loop(period: int) -> None:
    x = random_walk(300_000, seed=period)
    expected = loop_smoothing(x.tolist(), period, 2.0 / (period + 1))
    np.testing.assert_allclose(indicators.ema(x, period), expected, rtol=1e-12, atol=0)


def test_wilder_matches_a_plain_loop() -> None:
    x = random_walk(50_000, seed=11)
    expected = loop_smoothing(x.tolist(), 14, 1.0 / 14)
    np.testing.assert_allclose(indicators.wilder(x, 14), expected, rtol=1e-12, atol=0)


def test_rsi_small_and_edges() -> None:
    close = np.array([10.0, 11.0, 10.0, 12.0, 12.0])
    # changes +1, -1, +2, 0; period 2: gains avg at bar 2 = 0.5, losses 0.5 -> 50;
    # bar 3: gain (0.5 + 2) / 2 = 1.25, loss 0.25 -> 100 * 1.25 / 1.5.
    # bar 4: gain 0.625, loss 0.125 -> 100 * 0.625 / 0.75.
    out = indicators.rsi(close, 2)
    np.testing.assert_allclose(out, [NAN, NAN, 50.0, 100 * 1.25 / 1.5, 100 * 0.625 / 0.75])
    assert np.all(indicators.rsi(np.full(10, 5.0), 3)[3:] == 50.0)
    assert np.all(indicators.rsi(np.arange(10.0), 3)[3:] == 100.0)
    assert np.all(indicators.rsi(np.arange(10.0)[::-1], 3)[3:] == 0.0)


def test_rsi_matches_a_plain_loop() -> None:
    close = random_walk(20_000, seed=5)
    change = np.diff(close)
    gain = loop_smoothing(np.maximum(change, 0).tolist(), 14, 1 / 14)
    loss = loop_smoothing(np.maximum(-change, 0).tolist(), 14, 1 / 14)
    expected = [NAN] + [100 * g / (g + lo) for g, lo in zip(gain, loss, strict=True)]
    np.testing.assert_allclose(indicators.rsi(close, 14), expected, rtol=1e-11)


def test_macd_is_ema_difference_and_its_signal() -> None:
    close = random_walk(20_000, seed=9)
    out = indicators.macd(close, 12, 26, 9)
    fast = np.array(loop_smoothing(close.tolist(), 12, 2 / 13))
    slow = np.array(loop_smoothing(close.tolist(), 26, 2 / 27))
    line = fast - slow
    signal = [NAN] * 25 + loop_smoothing(line[25:].tolist(), 9, 2 / 10)
    np.testing.assert_allclose(out.line, line, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.signal, signal, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out.hist, out.line - out.signal, rtol=0, atol=0)
    assert np.isnan(out.signal[32]) and not np.isnan(out.signal[33])
    with pytest.raises(ValueError, match="fast"):
        indicators.macd(close, 26, 12, 9)


@pytest.mark.parametrize(("period", "n"), [(5, 1_000_000), (20, 1_000_000), (200, 200_000)])
def test_bollinger_matches_direct_population_std(period: int, n: int) -> None:
    x = random_walk(n, seed=period)
    bands = indicators.bollinger(x, period, 2.0)
    mean = direct(x, period, "mean")
    std = direct(x, period, "std")
    np.testing.assert_allclose(bands.middle, mean, rtol=1e-12, atol=0)
    np.testing.assert_allclose(bands.upper, mean + 2 * std, rtol=1e-12, atol=0)
    np.testing.assert_allclose(bands.lower, mean - 2 * std, rtol=1e-12, atol=0)
    np.testing.assert_allclose(indicators.rolling_std(x, period), std, rtol=1e-6, atol=1e-9)


def test_rolling_std_of_equal_values_is_exactly_zero() -> None:
    x = np.concatenate([random_walk(500), np.full(30, 61_234.56), random_walk(500)])
    std = indicators.rolling_std(x, 10)
    assert np.all(std[509:530] == 0.0)
    np.testing.assert_array_equal(
        indicators.rolling_std(np.array([1.0, 2.0, 3.0, 4.0]), 2), [NAN, 0.5, 0.5, 0.5]
    )


def test_atr_small() -> None:
    high = np.array([11.0, 12.0, 13.0, 12.0])
    low = np.array([9.0, 10.0, 11.0, 8.0])
    close = np.array([10.0, 11.0, 12.0, 9.0])
    # True ranges: 2, max(2, 2, 0) = 2, max(2, 2, 0) = 2, max(4, 0, 4) = 4.
    np.testing.assert_array_equal(indicators.true_range(high, low, close), [2, 2, 2, 4])
    np.testing.assert_array_equal(indicators.atr(high, low, close, 2), [NAN, 2.0, 2.0, 3.0])


@pytest.mark.parametrize("period", [1, 3, 20, 1000])
def test_rolling_extremes_match_direct(period: int) -> None:
    x = random_walk(200_000, seed=period)
    np.testing.assert_array_equal(indicators.rolling_max(x, period), direct(x, period, "max"))
    np.testing.assert_array_equal(indicators.rolling_min(x, period), direct(x, period, "min"))


def test_donchian_excludes_the_current_bar() -> None:
    high = np.array([5.0, 7.0, 6.0, 9.0, 8.0])
    low = np.array([4.0, 3.0, 5.0, 2.0, 6.0])
    channel = indicators.donchian(high, low, 2)
    np.testing.assert_array_equal(channel.upper, [NAN, NAN, 7.0, 7.0, 9.0])
    np.testing.assert_array_equal(channel.lower, [NAN, NAN, 3.0, 3.0, 2.0])
