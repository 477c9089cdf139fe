"""Advancing a live run: backtest parity within an epoch, epoch anchors, stale catch-up bars."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.backtest import run_backtest
from engine.broker import BrokerConfig, BrokerState, validate_risk
from engine.candles import Candles, resample
from engine.live import RunSpan, SignalsOf, advance
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.signals import Signals
from engine.simulator import Simulation, simulate
from engine.strategies import Strategy, validate_strategy

HOUR = 3_600_000
START = 1_735_689_600_000  # 2025-01-01T00:00:00Z
CONFIG = BrokerConfig(initial_capital=10_000.0, fee=0.001, slippage_bps=2.0)
RISK = validate_risk({"stop_loss": 0.01})
EMA = validate_strategy({"template": "ema_crossover", "params": {"fast": 3, "slow": 8}})


@pytest.fixture(scope="module")
def candles() -> Candles:
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
    return resample(SyntheticProvider().candles(spec, START, START + 40 * 24 * HOUR), HOUR)


def plain(candles: Candles, strategy: Strategy, calls: list[int] | None = None) -> SignalsOf:
    def signals_of(start: int, first: int, stop: int) -> Signals:
        if calls is not None:
            calls.append(int(candles.ts[start]))
        return strategy.signals(candles.slice(start, stop)).slice(first - start, stop - start)

    return signals_of


def step(
    candles: Candles,
    span: RunSpan,
    state: BrokerState,
    last_done: int | None,
    target: int,
    fresh_bars: int,
    calls: list[int] | None = None,
) -> Simulation | None:
    """``advance`` with the module's strategy, risk and config."""
    return advance(
        candles,
        plain(candles, EMA, calls),
        span,
        risk=RISK,
        config=CONFIG,
        state=state,
        last_done=last_done,
        target=target,
        fresh_bars=fresh_bars,
    )


def bar_by_bar(candles: Candles, span: RunSpan, end: int) -> tuple[list[Simulation], BrokerState]:
    """Tick every bar from trade_from up to ``end`` one at a time, like the dispatcher."""
    state, last, sims = BrokerState.start(CONFIG), None, []
    for ts in range(span.trade_from, end, span.step):
        sim = step(candles, span, state, last, ts, 3)
        assert sim is not None
        sims.append(sim)
        state, last = sim.state, ts
    return sims, state


def trades_of(sims: list[Simulation]) -> list[dict[str, Any]]:
    return [t for sim in sims for t in sim.trades.records()]


def equity_of(sims: list[Simulation]) -> list[float]:
    return [v for sim in sims for v in sim.equity.equity.tolist()]


def test_within_the_first_epoch_a_run_equals_a_backtest_from_its_anchor(candles: Candles) -> None:
    span = RunSpan.of(START + 3 * 24 * HOUR + 1, HOUR, EMA.warmup, epoch_bars=10_000)
    assert span.trade_from == START + 3 * 24 * HOUR + HOUR
    end = START + 30 * 24 * HOUR
    epoch = span.epoch_of(span.trade_from)
    assert span.epoch_of(end) == epoch  # one epoch of the UTC grid holds the whole span
    sims, state = bar_by_bar(candles, span, end)
    window = candles.between(span.anchor(epoch), end)
    expected = run_backtest(window, EMA, RISK, CONFIG, trade_from_ms=span.trade_from)
    assert len(expected.trades) >= 5
    assert trades_of(sims) == expected.trades.records()  # exact, floats included
    assert equity_of(sims) == expected.equity.equity.tolist()
    assert state.as_dict() == expected.state.as_dict()


def test_runs_started_apart_share_the_signals_of_each_bar(candles: Candles) -> None:
    early = RunSpan.of(START + 2 * 24 * HOUR, HOUR, EMA.warmup, epoch_bars=100)
    late = RunSpan.of(START + 5 * 24 * HOUR + 7, HOUR, EMA.warmup, epoch_bars=100)
    calls: dict[str, list[int]] = {"early": [], "late": []}
    target = START + 20 * 24 * HOUR
    assert early.anchor(early.epoch_of(target)) > late.trade_from > early.trade_from
    for name, span in (("early", early), ("late", late)):
        step(candles, span, BrokerState.start(CONFIG), target - 2 * HOUR, target, 3, calls[name])
    # Same epoch grid, same anchor: one computation could serve both runs.
    assert calls["early"] == calls["late"] == [early.anchor(early.epoch_of(target))]


def test_each_epoch_computes_its_signals_from_its_own_anchor(candles: Candles) -> None:
    span = RunSpan.of(START + 2 * 24 * HOUR, HOUR, EMA.warmup, epoch_bars=50)
    end = span.trade_from + 180 * HOUR
    epochs = range(span.epoch_of(span.trade_from), span.epoch_of(end - HOUR) + 1)
    assert len(epochs) == 5  # the first and last ones partial
    calls: list[int] = []
    whole = step(candles, span, BrokerState.start(CONFIG), None, end - HOUR, 10**6, calls)
    assert whole is not None and len(whole.equity) == 180
    assert calls == [span.anchor(k) for k in epochs]
    # The oracle: per epoch, a backtest's signals from that epoch's anchor, simulated on
    # from the state the previous epoch left.
    state, trades, equity = BrokerState.start(CONFIG), [], []
    for k in epochs:
        window = candles.between(span.anchor(k), min(span.epoch_start(k + 1), end))
        first = int(np.searchsorted(window.ts, max(span.epoch_start(k), span.trade_from)))
        signals = EMA.signals(window).slice(first, len(window))
        sim = simulate(window.slice(first, len(window)), signals, RISK, CONFIG, state)
        trades += sim.trades.records()
        equity += sim.equity.equity.tolist()
        state = sim.state
    assert whole.trades.records() == trades
    assert whole.equity.equity.tolist() == equity
    assert whole.state.as_dict() == state.as_dict()
    # Ticking bar by bar across the epoch boundaries gives the same.
    sims, last = bar_by_bar(candles, span, end)
    assert trades_of(sims) == trades and equity_of(sims) == equity
    assert last.as_dict() == state.as_dict()


def test_a_catch_up_records_equity_but_does_not_trade_on_stale_bars(candles: Candles) -> None:
    span = RunSpan.of(START + 2 * 24 * HOUR, HOUR, EMA.warmup, epoch_bars=10_000)
    target = span.trade_from + 99 * HOUR
    assert span.epoch_of(span.trade_from) == span.epoch_of(target)

    def catch_up(fresh_bars: int) -> Simulation:
        sim = step(candles, span, BrokerState.start(CONFIG), None, target, fresh_bars)
        assert sim is not None
        return sim

    everything = catch_up(10**6)
    assert len(everything.fills) >= 4  # the same bars do trade when they are fresh
    stale = catch_up(1)
    assert len(stale.equity) == 100 and len(stale.fills) == 0 and len(stale.trades) == 0
    assert stale.equity.equity.tolist() == [CONFIG.initial_capital] * 100
    # The last few bars stay fresh: their signals decide the next order as usual.
    fresh3 = catch_up(3)
    signals = EMA.signals(candles.between(span.anchor(span.epoch_of(target)), target + HOUR))
    last3 = signals.slice(len(signals) - 3, len(signals))
    expects_order = bool(last3.long_entry.any() or last3.short_entry.any())
    assert (fresh3.state.pending is not None or len(fresh3.fills) > 0) == expects_order


def test_an_order_decided_on_a_fresh_bar_still_fills_on_a_stale_one(candles: Candles) -> None:
    span = RunSpan.of(START + 2 * 24 * HOUR, HOUR, EMA.warmup, epoch_bars=10_000)
    state, last = BrokerState.start(CONFIG), None
    for ts in range(span.trade_from, span.trade_from + 300 * HOUR, HOUR):
        sim = step(candles, span, state, last, ts, 3)
        assert sim is not None
        state, last = sim.state, ts
        if state.pending is not None and state.units == 0:
            break
    assert state.pending is not None, "no entry decided in the span"
    assert last is not None
    sim = step(candles, span, state, last, last + 20 * HOUR, 1)
    assert sim is not None
    assert sim.fills.reason.tolist()[0] == "entry" and int(sim.fills.ts[0]) == last + HOUR
