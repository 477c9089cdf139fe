"""The backtest engine against a bare numpy reference on a million 1m bars.

Usage: .venv/bin/python scripts/bench/backtest_engine.py [--bars 1000000] [--repeats 9]

Generates synthetic BTC-USD 1m candles once (not timed), then times an SMA 50/200
crossover, long only, all in, 0.1 % fee: the engine's ``run_backtest`` (spec validation,
signals, simulation, metrics) against a few vectorized numpy lines doing the same
trades (position long while fast > slow, fills at the next open, fees on both fills,
fractional units, per-bar equity, total return and max drawdown). Runs alternate between
the two and the medians are compared. Both must make the same number of trades. The
other templates and a run with stops are then timed for information.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np

from engine.backtest import run_backtest
from engine.broker import BrokerConfig, Risk
from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.templates import TEMPLATES

START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
MINUTE_MS = 60_000
FAST, SLOW, FEE, CAPITAL = 50, 200, 0.001, 10_000.0
SMA_SPEC = {"template": "sma_crossover", "params": {"fast": FAST, "slow": SLOW}}
CONFIG = BrokerConfig(initial_capital=CAPITAL, fee=FEE, slippage_bps=0.0)


def reference(candles: Candles) -> tuple[int, float, float]:
    """Bare numpy SMA crossover: (closed trades, total return, max drawdown)."""
    o, c = candles.open, candles.close

    def sma(x: np.ndarray, p: int) -> np.ndarray:
        s = np.cumsum(x)
        out = np.full(len(x), np.nan)
        out[p - 1] = s[p - 1]
        out[p:] = s[p:] - s[:-p]
        return out / p

    held = np.zeros(len(c), dtype=np.int8)
    held[1:] = (sma(c, FAST) > sma(c, SLOW))[:-1]  # decided on the close, held from next open
    edges = np.diff(held, prepend=np.int8(0))
    entries, exits = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    growth = o[exits] / o[entries[: len(exits)]] * (1 - FEE) / (1 + FEE)
    cash = CAPITAL * np.concatenate(([1.0], np.cumprod(growth)))
    units = cash[: len(entries)] / (o[entries] * (1 + FEE))
    bounds = np.concatenate(([0], np.sort(np.concatenate((entries, exits))), [len(c)]))
    seg_cash, seg_units = np.zeros(len(bounds) - 1), np.zeros(len(bounds) - 1)
    seg_cash[0::2] = cash[: len(seg_cash[0::2])]
    seg_units[1::2] = units[: len(seg_units[1::2])]
    lengths = np.diff(bounds)
    equity = np.repeat(seg_cash, lengths) + np.repeat(seg_units, lengths) * c
    max_drawdown = 1.0 - float((equity / np.maximum.accumulate(equity)).min())
    return len(exits), float(equity[-1] / CAPITAL - 1.0), max_drawdown


def engine(candles: Candles, spec: dict[str, Any] = SMA_SPEC, risk: Risk | None = None) -> Any:
    """The engine's full backtest."""
    return run_backtest(candles, spec, risk or Risk(), CONFIG)


def synthetic_bars(count: int) -> Candles:
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
    return SyntheticProvider().candles(spec, START_MS, START_MS + count * MINUTE_MS)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    t0 = time.perf_counter()
    candles = synthetic_bars(args.bars)
    print(f"{len(candles):,} synthetic BTC-USD 1m bars in {time.perf_counter() - t0:.1f} s")
    print(f"SMA {FAST}/{SLOW} crossover, long only, all in, fee {FEE:.1%}")

    engine(candles)  # warm up both, so neither pays first-touch costs
    reference(candles)
    engine_times, reference_times = [], []
    for _ in range(args.repeats):
        seconds, result = timed(lambda: engine(candles))
        engine_times.append(seconds)
        seconds, ref = timed(lambda: reference(candles))
        reference_times.append(seconds)
    engine_ms, reference_ms = median_ms(engine_times), median_ms(reference_times)
    ref_trades, ref_return, ref_drawdown = ref
    m = result.metrics
    print(f"  engine     {engine_ms:7.1f} ms  (median of {args.repeats})")
    print(f"  reference  {reference_ms:7.1f} ms  (median of {args.repeats})")
    print(f"  ratio      {engine_ms / reference_ms:7.2f} x  (target <= 1.5)")
    print(
        f"  trades     engine {len(result.trades)}, reference {ref_trades}: "
        f"{'same' if len(result.trades) == ref_trades else 'DIFFERENT'}"
    )
    print(f"  return     engine {m.total_return:+.6f}, reference {ref_return:+.6f}")
    print(f"  drawdown   engine {m.max_drawdown:.6f}, reference {ref_drawdown:.6f}")

    print("Other templates (default parameters), informational:")
    for key in TEMPLATES:
        samples = []
        for _ in range(3):
            seconds, out = timed(lambda key=key: engine(candles, {"template": key}))
            samples.append(seconds)
        print(f"  {key:20s} {median_ms(samples):7.1f} ms  {len(out.trades):6d} trades")
    risky = Risk(stop_loss=0.01, take_profit=0.02, trailing_stop=0.01, direction="long_short")
    samples = []
    for _ in range(3):
        seconds, out = timed(lambda: engine(candles, SMA_SPEC, risky))
        samples.append(seconds)
    print(
        f"  {'sma + stops, long/short':20s} {median_ms(samples):7.1f} ms  "
        f"{len(out.trades):6d} trades"
    )
    if len(result.trades) != ref_trades:
        sys.exit("engine and reference disagree on the number of trades")


if __name__ == "__main__":
    main()
