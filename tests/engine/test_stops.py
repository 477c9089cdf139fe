"""Intrabar exits: stop loss, take profit, trailing stop, gaps, ties and the entry bar."""

from __future__ import annotations

from typing import Any

import pytest

from engine.broker import BrokerConfig, Risk
from engine.simulator import Simulation, simulate
from tests.engine.bars import candles, signals

CONFIG = BrokerConfig(initial_capital=1000.0, fee=0.0)
ENTRY = [(100.0, 101.0, 99.0, 100.0), (100.0, 101.0, 99.0, 100.0)]  # buys 10 at 100 on bar 1


def run(later: list[tuple[float, float, float, float]], risk: Risk) -> Simulation:
    bars = candles(ENTRY + later)
    return simulate(bars, signals(len(bars), entry=[0]), risk, CONFIG)


def exit_of(sim: Simulation) -> tuple[int, float, str]:
    (trade,) = sim.trades.records()
    return trade["exit_bar"], trade["exit_price"], trade["exit_reason"]


def test_stop_loss_fills_at_the_stop_inside_the_bar() -> None:
    sim = run([(99, 100, 94, 96), (96, 97, 95, 96)], Risk(stop_loss=0.05))
    assert exit_of(sim) == (2, 95.0, "stop_loss")
    assert sim.trades.pnl.tolist() == [-50.0]
    assert sim.equity.equity.tolist() == [1000.0, 1000.0, 950.0, 950.0]


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    sim = run([(90, 92, 88, 91)], Risk(stop_loss=0.05))
    assert exit_of(sim) == (2, 90.0, "stop_loss")


def test_stop_wins_when_stop_and_target_are_both_touched() -> None:
    sim = run([(100, 111, 94, 105)], Risk(stop_loss=0.05, take_profit=0.1))
    assert exit_of(sim) == (2, 95.0, "stop_loss")


def test_take_profit_at_the_target_or_a_better_open() -> None:
    risk = Risk(take_profit=0.1)
    assert exit_of(run([(101, 111, 100, 105)], risk)) == (2, pytest.approx(110.0), "take_profit")
    assert exit_of(run([(112, 115, 111, 113)], risk)) == (2, 112.0, "take_profit")


def test_stops_apply_on_the_entry_bar() -> None:
    bars = candles([(100, 101, 99, 100), (100, 101, 94, 100), (100, 101, 99, 100)])
    sim = simulate(bars, signals(3, entry=[0]), Risk(stop_loss=0.05), CONFIG)
    assert exit_of(sim) == (1, 95.0, "stop_loss")
    assert sim.equity.units.tolist() == [0.0, 0.0, 0.0]


def test_trailing_stop_uses_the_best_price_before_the_bar() -> None:
    later = [
        (100, 105, 99, 104),  # best so far 100 (entry) -> stop 90
        (104, 110, 103, 109),  # best 105 -> stop 94.5
        (109, 120, 99.5, 100),  # best 110 -> stop 99: the low 99.5 holds, this bar's 120 is unused
        (100, 101, 98, 99),  # best 120 -> stop 108: gaps through, out at the open
    ]
    sim = run(later, Risk(stop_loss=0.05, trailing_stop=0.1))
    assert exit_of(sim) == (5, 100.0, "trailing_stop")
    assert sim.state.best_price == 0.0  # reset when flat


def test_fixed_stop_is_reported_when_it_is_the_tighter_one() -> None:
    sim = run([(99, 100, 93, 95)], Risk(stop_loss=0.05, trailing_stop=0.2))
    assert exit_of(sim) == (2, 95.0, "stop_loss")


def test_short_stops_mirror_long_ones() -> None:
    risk = Risk(stop_loss=0.05, take_profit=0.1, direction="long_short")
    bars = candles([*ENTRY, (101, 106, 100, 104)])
    sim = simulate(bars, signals(3, short_entry=[0]), risk, CONFIG)
    (trade,) = sim.trades.records()
    assert (trade["side"], trade["exit_price"], trade["exit_reason"]) == (
        "short",
        105.0,
        "stop_loss",
    )
    assert trade["pnl"] == -50.0
    bars = candles([*ENTRY, (99, 100, 88, 90)])
    sim = simulate(bars, signals(3, short_entry=[0]), risk, CONFIG)
    assert exit_of(sim) == (2, 90.0, "take_profit")
    trail = Risk(trailing_stop=0.1, direction="long_short")
    bars = candles([*ENTRY, (95, 96, 80, 85), (85, 89, 84, 88), (88, 89.5, 87, 88)])
    sim = simulate(bars, signals(5, short_entry=[0]), trail, CONFIG)
    # Lowest price before bar 3 is bar 2's 80 -> stop 88, touched by bar 3's high of 89.
    assert exit_of(sim) == (3, 88.0, "trailing_stop")


def test_exit_fills_pay_slippage() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.0, slippage_bps=10)
    bars = candles([*ENTRY, (99, 100, 94, 96)])
    sim = simulate(bars, signals(3, entry=[0]), Risk(stop_loss=0.05), config)
    buy, sell = sim.fills.price.tolist()
    assert buy == pytest.approx(100.1, rel=1e-15)
    assert sell == pytest.approx(100.1 * 0.95 * 0.999, rel=1e-15)


def test_after_a_stop_only_a_new_signal_reenters() -> None:
    bars = candles(ENTRY + [(99, 100, 94, 96)] + [(96, 97, 95, 96)] * 4)
    sim = simulate(bars, signals(len(bars), entry=[0, 5]), Risk(stop_loss=0.05), CONFIG)
    assert sim.fills.bar.tolist() == [1, 2, 6]
    assert sim.fills.reason.tolist() == ["entry", "stop_loss", "entry"]


def test_a_signal_exit_beats_a_gap_on_the_same_open() -> None:
    # The order decided on bar 2's close fills at bar 3's open before stops are checked.
    bars = candles([*ENTRY, (100, 101, 99, 100), (80, 81, 79, 80)])
    sim = simulate(bars, signals(4, entry=[0], exit_=[2]), Risk(stop_loss=0.05), CONFIG)
    assert exit_of(sim) == (3, 80.0, "signal")


def test_dca_stop_uses_the_average_entry_price() -> None:
    bars = candles(
        [(10, 10.5, 9.5, 10), (10, 10.5, 9.5, 10), (20, 20.5, 19.5, 20), (20, 20.5, 16, 18)]
    )
    risk = Risk(stop_loss=0.2)
    sim = simulate(bars, signals(4, entry=[0, 1], scale_in=0.3), risk, CONFIG)
    # 30 at 10 then 15 at 20: average 13.333.., stop 10.666..; the low of 16 holds it.
    assert len(sim.trades) == 0 and sim.state.units == 45.0
    bars = candles([*bars_rows(bars)[:3], (20, 20.5, 10, 12)])
    sim = simulate(bars, signals(4, entry=[0, 1], scale_in=0.3), risk, CONFIG)
    assert exit_of(sim) == (3, pytest.approx(600 / 45 * 0.8, rel=1e-15), "stop_loss")


def bars_rows(bars: Any) -> list[tuple[float, float, float, float]]:
    return list(zip(bars.open, bars.high, bars.low, bars.close, strict=True))
