"""A mirror's tick: copy its source's fills of this tick into the mirror's own paper account.

A mirror is never ticked on its own. The tick job that advances a source advances the
source's running mirrors right after it, in the same job and transaction, from the source's
simulation still in memory (``engine.mirror``): same bars, same fills, sized to the
mirror's account. A mirror whose source had nothing new (or failed) waits for the source's
next tick. See docs/execution.md, "Mirrors".
"""

from __future__ import annotations

from engine.broker import BrokerState
from engine.candles import Candles
from engine.live import new_bars
from engine.mirror import follow, source_orders
from engine.simulator import Simulation
from models.bots.runs import config_from
from models.bots.ticks import LiveRun, Tick, span_of


def first_new_bar(mirror: LiveRun, epoch_bars: int) -> int:
    """The oldest candle a mirror's tick needs: its next bar (a mirror computes no signals)."""
    return span_of(mirror.started_at, mirror.timeframe, 0, epoch_bars).first_new(
        mirror.last_candle_ts
    )


def follow_source(
    candles: Candles, mirror: LiveRun, source: LiveRun, sim: Simulation, epoch_bars: int
) -> Tick | None:
    """The mirror's tick over the bars up to its source's last one; None when none are new.

    Touches no database. ``candles`` are the pair's candles the batch loaded.
    """
    if not len(sim.equity):
        return None
    target = int(sim.equity.ts[-1])
    span = span_of(mirror.started_at, mirror.timeframe, 0, epoch_bars)
    bars = new_bars(candles, span, mirror.last_candle_ts, target)
    if not bars:
        return None
    part = candles.slice(bars.start, bars.stop)
    orders = source_orders(sim, float(source.costs[2]))
    result = follow(
        part, orders, config_from(mirror.costs), BrokerState.from_dict(mirror.broker_state)
    )
    return Tick(
        run=mirror,
        trades=result.trades.records(),
        equity_ts=result.equity.ts.tolist(),
        equity=result.equity.equity.tolist(),
        broker_state=result.state.as_dict(),
        last_candle_ts=int(result.equity.ts[-1]),
    )
