"""The rule language: validation errors by path, limits, semantics, template equivalence."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from engine import indicators
from engine.backtest import run_backtest
from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.rules import RuleError, compile_rules, validate_rules
from engine.strategies import validate_strategy

T0 = 1_704_067_200_000
M = 60_000


def sma(period: int) -> dict[str, Any]:
    return {"ind": "sma", "period": period}


def cross(op: str, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {"op": op, "left": left, "right": right}


def errors_of(rules: object) -> dict[str, list[str]]:
    with pytest.raises(RuleError) as caught:
        validate_rules(rules)
    return caught.value.errors


SMA_RULES = {
    "entry": cross("crosses_above", sma(5), sma(20)),
    "exit": cross("crosses_below", sma(5), sma(20)),
    "short_entry": cross("crosses_below", sma(5), sma(20)),
    "short_exit": cross("crosses_above", sma(5), sma(20)),
}


def btc(minutes: int = 5_000) -> Candles:
    return SyntheticProvider().candles(SYNTHETIC_INSTRUMENTS[0], T0, T0 + minutes * M)


def test_valid_rules_round_trip() -> None:
    raw = {
        "entry": {
            "all": [
                cross("crosses_above", {"ind": "ema", "period": 12, "source": "high"}, sma(30)),
                cross("<", {"ind": "rsi", "period": 14}, {"const": 70}),
                {
                    "any": [
                        cross(">", {"price": "volume"}, {"const": 1.5}),
                        cross(
                            ">=",
                            {"ind": "macd", "fast": 3, "slow": 8, "signal": 4, "output": "hist"},
                            {"const": 0},
                        ),
                    ]
                },
            ]
        },
        "exit": cross(
            "crosses_below",
            {"price": "close"},
            {"ind": "bollinger", "period": 20, "k": 2, "output": "middle"},
        ),
        "short_entry": cross("<=", {"ind": "atr", "period": 14}, {"const": 3}),
    }
    rules = validate_rules(raw)
    expected = json.loads(json.dumps(raw))
    expected["entry"]["all"][1]["right"]["const"] = 70.0
    expected["entry"]["all"][2]["any"][0]["right"]["const"] = 1.5
    expected["entry"]["all"][2]["any"][1]["right"]["const"] = 0.0
    expected["exit"]["right"]["k"] = 2.0
    expected["short_entry"]["right"]["const"] = 3.0
    expected["entry"]["all"][0]["right"]["source"] = "close"  # defaults are made explicit
    assert rules.as_dict() == expected
    assert validate_rules(rules.as_dict()) == rules
    assert rules.warmup == 30 - 1 + 2  # the 30-bar SMA is the longest warm-up
    signals = compile_rules(rules)(btc())
    assert signals.long_entry.any() and signals.long_exit.any()
    assert not signals.short_exit.any()


def test_errors_are_keyed_by_path() -> None:
    assert errors_of(
        {
            "entry": {
                "all": [
                    cross("<", {"price": "close"}, {"const": 1}),
                    cross("<", {"ind": "sma", "period": 0, "colour": 1}, {"const": math.inf}),
                ]
            },
            "exit": {"op": "between", "left": {"price": "mid"}},
            "bogus": 1,
        }
    ) == {
        "bogus": ["unknown key"],
        "entry.all[1].left.colour": ["unknown key"],
        "entry.all[1].left.period": ["must be a whole number from 1 to 1000"],
        "entry.all[1].right.const": ["must be a finite number"],
        "exit.op": ["must be one of: <, <=, >, >=, crosses_above, crosses_below"],
        "exit.left.price": ["must be one of: open, high, low, close, volume"],
        "exit.right": ["required"],
    }


def test_more_errors() -> None:
    assert errors_of([]) == {"rules": ["must be an object"]}
    assert errors_of({}) == {"entry": ["required"], "exit": ["required"]}
    assert errors_of({"entry": {"all": []}, "exit": {"nothing": 1}}) == {
        "entry.all": ["must be a non-empty list"],
        "exit": ["must have one of the keys all, any or op"],
        "exit.nothing": ["unknown key"],
    }
    macd = {"ind": "macd", "fast": 26, "slow": 12, "signal": 9.5, "output": "x"}
    bands = {"ind": "bollinger", "period": True, "k": 0}
    assert errors_of({"entry": cross(">", macd, bands), "exit": cross(">", sma(2), "x")}) == {
        "entry.left.signal": ["must be a whole number from 1 to 1000"],
        "entry.left.output": ["must be one of: line, signal, hist"],
        "entry.right.output": ["required"],
        "entry.right.period": ["must be a whole number from 1 to 1000"],
        "entry.right.k": ["must be above 0 and at most 10"],
        "exit.right": ["must be an object"],
    }
    macd["signal"], macd["output"] = 9, "line"
    assert errors_of(
        {"entry": cross(">", macd, sma(1)), "exit": cross(">", sma(1001), sma(1))}
    ) == {
        "entry.left.slow": ["must be greater than fast (26)"],
        "exit.left.period": ["must be a whole number from 1 to 1000"],
    }
    assert errors_of({"entry": cross(">", {"ind": "vwap"}, sma(1)), "exit": SMA_RULES["exit"]}) == {
        "entry.left.ind": ["must be one of: sma, ema, rsi, atr, macd, bollinger"]
    }


def nested(depth: int) -> dict[str, Any]:
    """A condition whose comparison operands sit at ``depth``."""
    cond: dict[str, Any] = cross(">", {"price": "close"}, {"const": 1})
    for _ in range(depth - 2):
        cond = {"all": [cond]}
    return cond


def test_depth_limit() -> None:
    validate_rules({"entry": nested(6), "exit": nested(2)})
    errors = errors_of({"entry": nested(7), "exit": nested(2)})
    assert errors == {
        "entry.all[0].all[0].all[0].all[0].all[0].left": ["nested deeper than 6 levels"],
        "entry.all[0].all[0].all[0].all[0].all[0].right": ["nested deeper than 6 levels"],
    }


def test_item_and_node_limits() -> None:
    leaf = cross(">", {"price": "close"}, {"const": 1})
    errors = errors_of({"entry": {"any": [leaf] * 17}, "exit": leaf})
    assert errors == {"entry.any": ["has 17 items; at most 16 allowed"]}
    # 1 + 16 x 3 = 49 nodes in entry, 1 + 5 x 3 = 16 in exit: 65 in all.
    errors = errors_of({"entry": {"any": [leaf] * 16}, "exit": {"all": [leaf] * 5}})
    assert errors == {"rules": ["has 65 nodes; at most 64 allowed"]}
    validate_rules({"entry": {"any": [leaf] * 16}, "exit": {"all": [leaf] * 4}})


def test_semantics_of_comparisons_and_groups() -> None:
    candles = btc(300)
    close = candles.close
    rules = validate_rules(
        {
            "entry": {
                "all": [
                    cross(">", {"price": "close"}, sma(10)),
                    cross("<=", {"price": "close"}, {"const": float(np.median(close))}),
                ]
            },
            "exit": {
                "any": [cross("<", {"price": "close"}, sma(10)), cross(">=", sma(3), sma(10))]
            },
        }
    )
    out = compile_rules(rules)(candles)
    average = indicators.sma(close, 10)
    with np.errstate(invalid="ignore"):
        expected_entry = (close > average) & (close <= np.median(close))
        expected_exit = (close < average) | (indicators.sma(close, 3) >= average)
    assert np.array_equal(out.long_entry, expected_entry)
    assert np.array_equal(out.long_exit, expected_exit)
    assert not out.long_entry[:9].any()  # NaN warm-up compares False
    assert not out.short_entry.any()


@pytest.mark.parametrize("direction", ["long_only", "long_short"])
def test_rules_equal_the_template(direction: str) -> None:
    candles = btc()
    template = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}
    by_template = validate_strategy(template).signals(candles)
    by_rules = validate_strategy({"rules": SMA_RULES}).signals(candles)
    for name in ("long_entry", "long_exit", "short_entry", "short_exit"):
        assert np.array_equal(getattr(by_template, name), getattr(by_rules, name))
    risk = {"direction": direction, "stop_loss": 0.002}
    a = run_backtest(candles, template, risk)
    b = run_backtest(candles, {"rules": SMA_RULES}, risk)
    assert len(a.trades) > 10
    assert a.trades.records() == b.trades.records()
    assert np.array_equal(a.equity.equity, b.equity.equity)
