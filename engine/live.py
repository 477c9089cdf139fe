"""Advancing a live run over the bars that closed since its last tick: epochs and stale bars.

A live run trades from ``trade_from``, the first bar of its timeframe opening at or after
its start. Two rules decide which signals it acts on (docs/execution.md):

- **Epochs.** Indicators seeded from the first bars of a series (EMA, RSI, MACD) depend on
  where the series starts, so signals are always computed from a fixed anchor, never a
  rolling window. To keep a tick's cost bounded, time is cut into epochs of
  ``epoch_bars`` bars on a grid fixed in UTC (epoch ``k`` starts at ``k * epoch_bars *
  step`` ms); the signals of a bar in epoch ``k`` are computed over the series starting
  ``warmup`` bars before epoch ``k``. A signal therefore depends only on the instrument,
  the timeframe, the strategy and the bar, not on when a run started, so runs with the
  same strategy share one computation. Within an epoch a run equals a backtest from that
  epoch's anchor, bar for bar.
- **Stale bars.** A tick is asked for a target candle. Bars more than ``fresh_bars - 1``
  bars older than the target (a catch-up after downtime) are simulated, so their equity
  is recorded, stops and an order already decided still fill, but their own signals are
  dropped: the run does not trade on signals it would have acted on long ago.

Pure: the caller loads the candles and persists the result (``workers/ticks.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from engine.broker import BrokerConfig, BrokerState, Risk
from engine.candles import Candles
from engine.signals import Signals
from engine.simulator import Simulation, simulate

# ``signals_of(start, first, stop)``: the signals of bars ``first..stop-1`` as computed over
# ``candles[start:stop]`` (``start`` is the epoch's anchor). A caller may cache them.
SignalsOf = Callable[[int, int, int], Signals]


@dataclass(frozen=True)
class RunSpan:
    """Where a run trades from and the epoch grid of its timeframe (all times in ms)."""

    trade_from: int
    step: int
    warmup: int
    epoch_bars: int

    @classmethod
    def of(cls, started_ms: int, step: int, warmup: int, epoch_bars: int) -> RunSpan:
        """The span of a run started at ``started_ms``: trading starts on the next bar open."""
        return cls(-(-started_ms // step) * step, step, warmup, epoch_bars)

    def epoch_of(self, ts: int) -> int:
        """The epoch of the bar opening at ``ts``: whole ``epoch_bars`` spans since 1970."""
        return ts // (self.epoch_bars * self.step)

    def epoch_start(self, epoch: int) -> int:
        """Open time of the first bar of ``epoch``."""
        return epoch * self.epoch_bars * self.step

    def anchor(self, epoch: int) -> int:
        """Where the signals of ``epoch`` start: ``warmup`` bars before the epoch."""
        return self.epoch_start(epoch) - self.warmup * self.step

    def first_new(self, last_done: int | None) -> int:
        """Where a tick after ``last_done`` starts: the next bar, never before ``trade_from``."""
        return self.trade_from if last_done is None else max(last_done + 1, self.trade_from)

    def first_needed(self, last_done: int | None) -> int:
        """The oldest candle a tick after ``last_done`` needs: its first new bar's anchor."""
        return self.anchor(self.epoch_of(self.first_new(last_done)))


def new_bars(candles: Candles, span: RunSpan, last_done: int | None, target: int) -> range:
    """Positions of the bars a tick simulates: after ``last_done``, from trade_from, to target."""
    first = int(np.searchsorted(candles.ts, span.first_new(last_done), side="left"))
    stop = int(np.searchsorted(candles.ts, target, side="right"))
    return range(first, max(first, stop))


def epoch_signals(candles: Candles, bars: range, span: RunSpan, signals_of: SignalsOf) -> Signals:
    """The signals of ``bars``, each computed from the anchor of the bar's epoch."""
    parts: list[Signals] = []
    i = bars.start
    while i < bars.stop:
        epoch = span.epoch_of(int(candles.ts[i]))
        next_epoch = int(np.searchsorted(candles.ts, span.epoch_start(epoch + 1), side="left"))
        stop = min(bars.stop, max(next_epoch, i + 1))
        anchor = int(np.searchsorted(candles.ts, span.anchor(epoch), side="left"))
        parts.append(signals_of(anchor, i, stop))
        i = stop
    return _joined(parts)


def _joined(parts: list[Signals]) -> Signals:
    if len(parts) == 1:
        return parts[0]
    return Signals(
        np.concatenate([p.long_entry for p in parts]),
        np.concatenate([p.long_exit for p in parts]),
        np.concatenate([p.short_entry for p in parts]),
        np.concatenate([p.short_exit for p in parts]),
        parts[0].scale_in if parts else None,
    )


def without_stale(signals: Signals, ts: np.ndarray, stale_through: int) -> Signals:
    """``signals`` with every intent dropped on bars opening at or before ``stale_through``."""
    stale = ts <= stale_through
    if not stale.any():
        return signals
    fresh = ~stale
    return Signals(
        signals.long_entry & fresh,
        signals.long_exit & fresh,
        signals.short_entry & fresh,
        signals.short_exit & fresh,
        signals.scale_in,
    )


def advance(
    candles: Candles,
    signals_of: SignalsOf,
    span: RunSpan,
    *,
    risk: Risk,
    config: BrokerConfig,
    state: BrokerState,
    last_done: int | None,
    target: int,
    fresh_bars: int,
) -> Simulation | None:
    """Simulate a run's new bars up to ``target`` from ``state``; None when there are none.

    ``candles`` must start at or before ``span.first_needed(last_done)``; ``signals_of``
    computes a strategy's signals over a slice of them (``strategy.signals`` on
    ``candles.slice``, possibly cached; see ``SignalsOf``).
    """
    bars = new_bars(candles, span, last_done, target)
    if not bars:
        return None
    signals = epoch_signals(candles, bars, span, signals_of)
    part = candles.slice(bars.start, bars.stop)
    signals = without_stale(signals, part.ts, target - fresh_bars * span.step)
    return simulate(part, signals, risk, config, state)
