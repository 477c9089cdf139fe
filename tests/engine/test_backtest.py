"""The fill model on hand-computed cases: timing, costs, sizing, reversals, the end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.broker import BrokerConfig, BrokerState, Risk
from engine.candles import Candles
from engine.ledger import OpenPosition
from engine.simulator import simulate
from tests.engine.bars import T0, M, candles, flat, signals

NO_COSTS = BrokerConfig(initial_capital=1200.0, fee=0.0, slippage_bps=0.0)


def test_a_signal_fills_at_the_next_open() -> None:
    bars = candles(
        [
            (10, 11, 9, 10),
            (10, 11, 9, 11),  # entry signal on this close
            (12, 13, 11, 12),  # buys 100 at 12
            (12, 14, 11, 13),  # exit signal on this close
            (14, 15, 13, 14),  # sells at 14
        ]
    )
    sim = simulate(bars, signals(5, entry=[1], exit_=[3]), Risk(), NO_COSTS)
    assert sim.trades.records() == [
        {
            "entry_bar": 2,
            "entry_ts": T0 + 2 * M,
            "entry_price": 12.0,
            "exit_bar": 4,
            "exit_ts": T0 + 4 * M,
            "exit_price": 14.0,
            "side": "long",
            "units": 100.0,
            "fees": 0.0,
            "pnl": 200.0,
            "pnl_pct": 200.0 / 1200.0,
            "exit_reason": "signal",
        }
    ]
    assert sim.fills.records() == [
        {"bar": 2, "ts": T0 + 2 * M, "side": "buy", "units": 100.0, "price": 12.0, "fee": 0.0,
         "reason": "entry"},
        {"bar": 4, "ts": T0 + 4 * M, "side": "sell", "units": 100.0, "price": 14.0, "fee": 0.0,
         "reason": "signal"},
    ]  # fmt: skip
    assert sim.equity.equity.tolist() == [1200.0, 1200.0, 1200.0, 1300.0, 1400.0]
    assert sim.equity.cash.tolist() == [1200.0, 1200.0, 0.0, 0.0, 1400.0]
    assert sim.equity.units.tolist() == [0.0, 0.0, 100.0, 100.0, 0.0]
    assert sim.equity.ts.tolist() == bars.ts.tolist()


def test_fee_and_slippage_with_whole_units() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.01, slippage_bps=100, fractional=False)
    sim = simulate(flat([10, 10, 10, 12, 12]), signals(5, entry=[1], exit_=[2]), Risk(), config)
    buy, sell = sim.fills.records()
    # Buys pay 1 % more: 10.1, and 10.1 x 1.01 = 10.201 a unit with commission -> 98 units.
    assert buy["price"] == pytest.approx(10.1, rel=1e-15)
    assert buy["units"] == 98.0
    assert buy["fee"] == pytest.approx(98 * 10.1 * 0.01, rel=1e-15)
    # Sells receive 1 % less: 11.88.
    assert sell["price"] == pytest.approx(11.88, rel=1e-15)
    assert sell["fee"] == pytest.approx(98 * 11.88 * 0.01, rel=1e-15)
    (trade,) = sim.trades.records()
    assert trade["pnl"] == pytest.approx(98 * (11.88 - 10.1) - 9.898 - 11.6424, rel=1e-12)
    assert trade["fees"] == pytest.approx(9.898 + 11.6424, rel=1e-12)
    assert sim.state.cash == pytest.approx(1000 + 152.8996, rel=1e-12)
    assert sim.equity.equity[2] == pytest.approx(1000 - 989.8 - 9.898 + 98 * 10, rel=1e-12)


def test_fractional_units_round_down_to_the_precision() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.0, size_precision=2)
    sim = simulate(flat([3, 3, 3]), signals(3, entry=[0]), Risk(), config)
    assert sim.fills.units.tolist() == [333.33]
    assert sim.state.cash == pytest.approx(0.01, abs=1e-9)
    whole_units = BrokerConfig(initial_capital=1000.0, fee=0.0, fractional=False)
    whole = simulate(flat([3, 3, 3]), signals(3, entry=[0]), Risk(), whole_units)
    assert whole.fills.units.tolist() == [333.0]


def test_fraction_sizing_spends_that_share_of_cash() -> None:
    risk = Risk(sizing="fraction", fraction=0.5)
    config = BrokerConfig(initial_capital=1000.0, fee=0.001, fractional=False)
    sim = simulate(flat([10, 10, 10]), signals(3, entry=[0]), risk, config)
    # 500 / (10 x 1.001) = 49.95 -> 49 units.
    assert sim.fills.units.tolist() == [49.0]
    assert sim.state.cash == pytest.approx(1000 - 490 - 0.49, rel=1e-12)


def test_unaffordable_entry_is_skipped() -> None:
    config = BrokerConfig(initial_capital=50.0, fee=0.0, fractional=False)
    sim = simulate(flat([60, 60, 40, 40]), signals(4, entry=[0, 1]), Risk(), config)
    assert sim.fills.bar.tolist() == [2]  # nothing at 60 on bar 1; the bar-1 signal buys at 40
    assert sim.fills.units.tolist() == [1.0]


def test_entry_and_exit_on_the_same_bar_cancel() -> None:
    sim = simulate(flat([10] * 5), signals(5, entry=[1, 2], exit_=[1]), Risk(), NO_COSTS)
    assert sim.fills.bar.tolist() == [3]


def test_long_short_reversal_is_sized_from_cash_after_the_close() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.01, fractional=False)
    bars = flat([10, 10, 10, 12, 9, 9])
    sig = signals(6, entry=[0], short_entry=[2], short_exit=[4])
    sim = simulate(bars, sig, Risk(direction="long_short"), config)
    fills = sim.fills.records()
    assert [(f["bar"], f["side"], f["units"], f["price"], f["reason"]) for f in fills] == [
        (1, "buy", 99.0, 10.0, "entry"),  # 1000 / 10.1 -> 99
        (3, "sell", 99.0, 12.0, "reverse"),
        (3, "sell", 97.0, 12.0, "entry"),  # cash after the close 1176.22 / 12.12 -> 97
        (5, "buy", 97.0, 9.0, "signal"),
    ]
    long_trade, short_trade = sim.trades.records()
    assert (long_trade["side"], long_trade["exit_reason"]) == ("long", "reverse")
    assert long_trade["pnl"] == pytest.approx(99 * 2 - 9.9 - 11.88, rel=1e-12)
    assert (short_trade["side"], short_trade["exit_reason"]) == ("short", "signal")
    assert short_trade["pnl"] == pytest.approx(97 * 3 - 11.64 - 8.73, rel=1e-12)
    assert sim.equity.units.tolist() == [0, 99, 99, -97, -97, 0]
    assert sim.equity.equity[4] == pytest.approx(1176.22 + 1164 - 11.64 - 97 * 9, rel=1e-12)
    assert sim.state.cash == pytest.approx(1446.85, rel=1e-12)
    # Long only ignores the short signals: the long is still open at the end.
    long_only = simulate(bars, sig, Risk(), config)
    assert len(long_only.trades) == 0 and long_only.state.units == 99


def test_open_position_at_the_end_is_reported_not_closed() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.01, fractional=False)
    bars = candles([(10, 11, 9, 10), (10, 11, 9, 10), (10, 13, 9, 12)])
    sim = simulate(bars, signals(3, entry=[0]), Risk(), config)
    assert len(sim.trades) == 0 and len(sim.fills) == 1
    assert sim.equity.equity[-1] == pytest.approx(1000 - 990 - 9.9 + 99 * 12, rel=1e-12)
    position = OpenPosition.from_state(sim.state, float(bars.close[-1]))
    assert position is not None
    assert position.as_dict() == {
        "side": "long",
        "units": 99.0,
        "entry_bar": 1,
        "entry_ts": T0 + M,
        "entry_price": 10.0,
        "fees": pytest.approx(9.9, rel=1e-12),
        "mark_price": 12.0,
        "unrealized_pnl": pytest.approx(99 * 2 - 9.9, rel=1e-12),
        "unrealized_pnl_pct": pytest.approx((99 * 2 - 9.9) / 990, rel=1e-12),
    }
    assert OpenPosition.from_state(BrokerState(cash=1.0), 1.0) is None


def test_a_signal_on_the_last_bar_is_left_pending() -> None:
    sim = simulate(flat([10, 10, 10]), signals(3, entry=[2]), Risk(), NO_COSTS)
    assert len(sim.fills) == 0
    assert sim.state.pending == "open_long"
    next_bar = Candles.from_rows([[T0 + 3 * M, 11, 12, 10, 11, 1]])
    resumed = simulate(next_bar, signals(1), Risk(), NO_COSTS, sim.state)
    assert resumed.fills.records()[0]["bar"] == 3
    assert resumed.fills.records()[0]["price"] == 11.0
    assert resumed.state.pending is None and resumed.state.units > 0


def test_state_round_trips_through_json_and_guards_continuity() -> None:
    sim = simulate(flat([10, 10, 10]), signals(3, entry=[0]), Risk(), NO_COSTS)
    state = BrokerState.from_dict(json.loads(json.dumps(sim.state.as_dict())))
    assert state == sim.state
    with pytest.raises(ValueError, match="after the state"):
        simulate(flat([10]), signals(1), Risk(), NO_COSTS, state)
    with pytest.raises(ValueError, match="signals for"):
        simulate(flat([10, 10]), signals(3), Risk(), NO_COSTS)


def test_no_bars_changes_nothing() -> None:
    sim = simulate(flat([]), signals(0), Risk(), NO_COSTS)
    assert len(sim.equity) == 0 and sim.state == BrokerState.start(NO_COSTS)
    held = simulate(flat([10, 10]), signals(2, entry=[0]), Risk(), NO_COSTS).state
    assert simulate(flat([]), signals(0), Risk(), NO_COSTS, held).state == held


def test_periodic_dca_adds_to_one_position_until_cash_runs_out() -> None:
    config = BrokerConfig(initial_capital=1000.0, fee=0.0)
    bars = flat([10, 10, 20, 20, 10, 10])
    sim = simulate(bars, signals(6, entry=range(5), scale_in=0.3), Risk(), config)
    fills = sim.fills.records()
    assert [(f["bar"], f["units"], f["price"], f["reason"]) for f in fills] == [
        (1, 30.0, 10.0, "entry"),
        (2, 15.0, 20.0, "add"),
        (3, 15.0, 20.0, "add"),
        (4, 10.0, 10.0, "add"),  # only 100 of cash left
    ]  # and the bar-5 buy finds no cash
    assert sim.state.units == 70.0 and sim.state.cash == 0.0
    assert sim.state.entry_price == pytest.approx(1000 / 70, rel=1e-12)
    assert sim.state.entry_bar == 1
    assert np.array_equal(sim.equity.units, [0, 30, 45, 60, 70, 70])
