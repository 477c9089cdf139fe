"""Properties of whole runs: no look-ahead, resumability, chunking, progress, errors."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from engine import walks
from engine.backtest import (
    ENGINE_VERSION,
    METRICS_VERSION,
    Cancelled,
    run_backtest,
)
from engine.broker import BrokerConfig, BrokerState, Risk
from engine.candles import Candles
from engine.ledger import Fills, Trades
from engine.params import ParamError
from engine.rules import RuleError
from engine.signals import Signals
from engine.simulator import Simulation, simulate
from engine.strategies import validate_strategy
from tests.engine.bars import btc, head

RSI = {"ind": "rsi", "period": 7}
SPECS: list[dict[str, Any]] = [
    {"template": "sma_crossover", "params": {"fast": 5, "slow": 30}},
    {"template": "bollinger_bands"},
    {"template": "periodic_dca", "params": {"every": 30, "amount": 0.1}},
    {
        "rules": {
            "entry": {"op": "crosses_above", "left": RSI, "right": {"const": 55}},
            "exit": {"op": "<", "left": RSI, "right": {"const": 45}},
            "short_entry": {"op": "crosses_below", "left": RSI, "right": {"const": 45}},
            "short_exit": {"op": ">", "left": RSI, "right": {"const": 55}},
        }
    },
]
RISKS = [
    Risk(),
    Risk(stop_loss=0.002, take_profit=0.004, direction="long_short"),
    Risk(trailing_stop=0.0015, sizing="fraction", fraction=0.6, direction="long_short"),
]
CONFIG = BrokerConfig(initial_capital=10_000.0, fee=0.001, slippage_bps=2.0, size_precision=4)


def perturbed_after(bars: Candles, t: int, seed: int) -> Candles:
    """Bars after t scaled by random factors (still valid OHLC), bars <= t untouched."""
    factor = np.ones(len(bars))
    factor[t + 1 :] = np.random.default_rng(seed).uniform(0.9, 1.1, len(bars) - t - 1)
    return Candles(
        bars.ts,
        bars.open * factor,
        bars.high * factor,
        bars.low * factor,
        bars.close * factor,
        bars.volume * factor,
    )


def fills_upto(fills: Fills, t: int) -> list[dict[str, Any]]:
    return [row for row in fills.records() if row["bar"] <= t]


def trades_upto(trades: Trades, t: int) -> list[dict[str, Any]]:
    return [row for row in trades.records() if row["exit_bar"] <= t]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.get("template", "rules"))
@pytest.mark.parametrize("risk", RISKS, ids=["plain", "stops", "trailing"])
def test_no_look_ahead(spec: dict[str, Any], risk: Risk) -> None:
    bars = btc(2_000)
    base = run_backtest(bars, spec, risk, CONFIG)
    assert len(base.fills) > 4
    for t in (150, 777, 1_500):
        other = run_backtest(perturbed_after(bars, t, seed=t), spec, risk, CONFIG)
        assert fills_upto(other.fills, t) == fills_upto(base.fills, t)
        assert trades_upto(other.trades, t) == trades_upto(base.trades, t)
        assert np.array_equal(other.equity.equity[: t + 1], base.equity.equity[: t + 1])
        assert not np.array_equal(other.equity.equity, base.equity.equity) or not len(base.fills)


def assert_same_run(parts: list[Simulation], whole: Simulation) -> None:
    assert Fills.concat([p.fills for p in parts]).records() == whole.fills.records()
    assert Trades.concat([p.trades for p in parts]).records() == whole.trades.records()
    for name in ("ts", "equity", "cash", "units"):
        joined = np.concatenate([getattr(p.equity, name) for p in parts])
        assert np.array_equal(joined, getattr(whole.equity, name)), name
    assert parts[-1].state == whole.state


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.get("template", "rules"))
@pytest.mark.parametrize("risk", RISKS, ids=["plain", "stops", "trailing"])
def test_resuming_from_the_state_changes_nothing(spec: dict[str, Any], risk: Risk) -> None:
    bars = btc(1_500)
    signals = validate_strategy(spec).signals(bars)
    whole = simulate(bars, signals, risk, CONFIG)
    assert len(whole.fills) > 4
    n = len(bars)
    fill_bars = whole.fills.bar.tolist()
    # Cut everywhere interesting: edges, on fills, just before and after them.
    cuts = sorted({1, 2, 17, n // 2, n - 2, n - 1, *fill_bars[:3], *(b + 1 for b in fill_bars[:3])})
    for k in cuts:
        if not 0 < k < n:
            continue
        first = simulate(head(bars, k), signals.slice(0, k), risk, CONFIG)
        second = simulate(head(bars, n, k), signals.slice(k, n), risk, CONFIG, first.state)
        assert_same_run([first, second], whole)


def test_bar_by_bar_equals_one_call() -> None:
    bars = btc(400)
    spec = {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}}
    signals = validate_strategy(spec).signals(bars)
    risk = RISKS[1]
    whole = simulate(bars, signals, risk, CONFIG)
    state: BrokerState | None = None
    parts = []
    for i in range(len(bars)):
        part = simulate(head(bars, i + 1, i), signals.slice(i, i + 1), risk, CONFIG, state)
        state = BrokerState.from_dict(json.loads(json.dumps(part.state.as_dict())))
        parts.append(part)
    assert len(whole.trades) > 10
    assert_same_run(parts, whole)


def test_chunk_size_does_not_change_the_result() -> None:
    bars = btc(3_000)
    spec = SPECS[0]
    big = run_backtest(bars, spec, RISKS[2], CONFIG)
    small = run_backtest(bars, spec, RISKS[2], CONFIG, chunk_bars=7)
    assert big.trades.records() == small.trades.records()
    assert np.array_equal(big.equity.equity, small.equity.equity)
    assert big.metrics == small.metrics and big.state == small.state


def test_result_contents() -> None:
    bars = btc(3_000)
    result = run_backtest(bars, {"template": "periodic_dca"}, {"stop_loss": 0.5}, {"fee": 0.0})
    assert (result.engine_version, result.metrics_version) == (ENGINE_VERSION, METRICS_VERSION)
    assert result.spec == {"template": "periodic_dca", "params": {"every": 24, "amount": 0.05}}
    assert result.risk.stop_loss == 0.5 and result.config.fee == 0.0
    assert len(result.trades) == 0 and result.open_position is not None
    position = result.open_position
    assert position.mark_price == bars.close[-1]
    assert result.equity.equity[-1] == pytest.approx(
        result.state.cash + position.units * position.mark_price, rel=1e-12
    )
    assert result.metrics.trades == 0
    assert result.metrics.exposure == np.count_nonzero(result.equity.units) / len(bars)
    json.dumps(result.metrics.as_dict(), allow_nan=False)
    json.dumps(position.as_dict(), allow_nan=False)
    json.dumps(result.trades.records() + result.fills.records(), allow_nan=False)


def test_checkpoint_reports_progress_and_can_cancel() -> None:
    bars = btc(1_000)
    seen: list[float] = []

    def record(progress: float) -> bool:
        seen.append(progress)
        return True

    run_backtest(bars, SPECS[0], checkpoint=record, chunk_bars=300)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) == 7
    assert seen == sorted(seen)

    def stop_at_half(progress: float) -> bool:
        return progress < 0.5

    with pytest.raises(Cancelled):
        run_backtest(bars, SPECS[0], checkpoint=stop_at_half, chunk_bars=300)


def test_invalid_input_raises_before_any_work() -> None:
    bars = btc(10)
    with pytest.raises(ParamError) as caught:
        run_backtest(bars, {"template": "sma_crossover", "params": {"fast": 9, "slow": 3}})
    assert caught.value.errors == {"slow": ["must be greater than fast (9)"]}
    with pytest.raises(RuleError):
        run_backtest(bars, {"rules": {"entry": {"op": "<"}}})
    with pytest.raises(ParamError) as caught:
        run_backtest(bars, SPECS[0], {"direction": "sideways"})
    assert caught.value.errors == {"direction": ["must be one of: long_only, long_short"]}
    with pytest.raises(ParamError):
        run_backtest(bars, SPECS[0], None, {"fee": -1})


def test_empty_candles() -> None:
    result = run_backtest(head(btc(5), 0), SPECS[0])
    assert len(result.equity) == 0 and result.open_position is None
    assert result.metrics.total_return == 0.0


def random_signals(n: int, seed: int, rate: float = 0.02) -> Signals:
    rng = np.random.default_rng(seed)
    columns = [rng.random(n) < rate for _ in range(4)]
    return Signals(*columns)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sizing", ["all_in", "fraction", "whole_units_tight"])
def test_plain_walk_equals_the_general_walk(
    seed: int, sizing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stop loss that cannot fire forces the general walk; the results must not change.
    resumed_at: list[int | None] = []
    plain_walk = walks.walk_plain

    def spy(book: Any, ev: walks.Events) -> int | None:
        resumed_at.append(plain_walk(book, ev))
        return resumed_at[-1]

    monkeypatch.setattr(walks, "walk_plain", spy)
    bars = btc(3_000)
    signals = random_signals(len(bars), seed)
    risk = Risk(sizing="fraction", fraction=0.3) if sizing == "fraction" else Risk()
    config = CONFIG
    if sizing == "whole_units_tight":
        # Cash for about one unit: some entries cannot buy any, which changes which
        # later signals count.
        price = float(bars.close[0])
        config = BrokerConfig(initial_capital=price * 1.003, fee=0.001, fractional=False)
    never_stops = Risk(stop_loss=0.99, sizing=risk.sizing, fraction=risk.fraction)
    plain = simulate(bars, signals, risk, config)
    general = simulate(bars, signals, never_stops, config)
    assert "stop_loss" not in general.fills.reason.tolist()
    assert len(plain.trades) > 5
    assert plain.fills.records() == general.fills.records()
    assert plain.trades.records() == general.trades.records()
    assert np.array_equal(plain.equity.equity, general.equity.equity)
    assert plain.state == general.state
    # Only the tight case hands over to the general walk (an entry that buys nothing).
    assert (resumed_at[0] is not None) == (sizing == "whole_units_tight")
    for k in (1, 999, 2_000):
        first = simulate(head(bars, k), signals.slice(0, k), risk, config)
        second = simulate(
            head(bars, len(bars), k), signals.slice(k, len(bars)), risk, config, first.state
        )
        assert_same_run([first, second], plain)


def test_warm_up_bars_only_feed_the_indicators() -> None:
    bars = btc(2_000)
    start = int(bars.ts[500])
    spec = SPECS[0]
    result = run_backtest(bars, spec, RISKS[1], CONFIG, trade_from_ms=start)
    assert len(result.equity) == 1_500 and result.equity.ts[0] == start
    assert result.metrics.start_ts == start and result.fills.bar.min() >= 0
    signals = validate_strategy(spec).signals(bars)
    alone = simulate(head(bars, 2_000, 500), signals.slice(500, 2_000), RISKS[1], CONFIG)
    assert result.fills.records() == alone.fills.records()
    # Without the warm-up the same span trades differently: the SMAs start later.
    cold = run_backtest(head(bars, 2_000, 500), spec, RISKS[1], CONFIG)
    assert cold.fills.records() != result.fills.records()
