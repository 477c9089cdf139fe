"""Templates: parameter validation messages, the catalogue, and every template's signals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine import indicators
from engine.broker import validate_config, validate_risk
from engine.candles import Candles
from engine.params import ParamError
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.rules import RuleError
from engine.signals import crossings
from engine.strategies import catalogue, validate_strategy
from engine.templates import TEMPLATES, dca_schedule, validate_params

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
M = 60_000


def btc(minutes: int = 3_000) -> Candles:
    return SyntheticProvider().candles(SYNTHETIC_INSTRUMENTS[0], T0, T0 + minutes * M)


def errors_of(template: object, params: object) -> dict[str, list[str]]:
    with pytest.raises(ParamError) as caught:
        validate_params(template, params)
    return caught.value.errors


def test_defaults_are_filled_in() -> None:
    assert validate_params("sma_crossover", {}) == {"fast": 20, "slow": 50}
    assert validate_params("sma_crossover", {"fast": 5.0}) == {"fast": 5, "slow": 50}
    assert validate_params("rsi_mean_reversion", {"oversold": 25}) == {
        "period": 14,
        "oversold": 25.0,
        "overbought": 70.0,
    }
    for template in TEMPLATES.values():
        defaults = {p.name: p.default for p in template.params}
        assert validate_params(template.key, {}) == defaults


def test_param_error_messages() -> None:
    assert errors_of("nope", {}) == {
        "template": ["unknown template; one of: " + ", ".join(TEMPLATES)]
    }
    assert errors_of("sma_crossover", []) == {"params": ["must be an object"]}
    assert errors_of("sma_crossover", {"fast": 10, "slow": 5, "speed": 1}) == {
        "speed": ["unknown parameter"],
        "slow": ["must be greater than fast (10)"],
    }
    assert errors_of("sma_crossover", {"fast": "10", "slow": 2.5}) == {
        "fast": ["must be an integer"],
        "slow": ["must be an integer"],
    }
    assert errors_of("sma_crossover", {"fast": True, "slow": 0}) == {
        "fast": ["must be an integer"],
        "slow": ["must be at least 1"],
    }
    assert errors_of("macd", {"signal": 1001, "fast": None}) == {
        "fast": ["must not be null"],
        "signal": ["must be at most 1000"],
    }
    assert errors_of("bollinger_bands", {"k": float("nan")}) == {"k": ["must be finite"]}
    assert errors_of("rsi_mean_reversion", {"oversold": 80}) == {
        "overbought": ["must be greater than oversold (80)"]
    }


def test_risk_and_config_validation() -> None:
    risk = validate_risk({"stop_loss": 0.05, "direction": "long_short"})
    assert (risk.stop_loss, risk.take_profit, risk.direction, risk.sizing) == (
        0.05,
        None,
        "long_short",
        "all_in",
    )
    with pytest.raises(ParamError) as caught:
        validate_risk({"stop_loss": 0, "sizing": "half", "fraction": 2, "x": 1})
    assert caught.value.errors == {
        "x": ["unknown parameter"],
        "stop_loss": ["must be at least 0.0001"],
        "sizing": ["must be one of: all_in, fraction"],
        "fraction": ["must be at most 1"],
    }
    config = validate_config({"fee": 0, "fractional": False})
    assert (config.fee, config.fractional, config.unit_scale) == (0.0, False, 1)
    with pytest.raises(ParamError) as caught:
        validate_config({"fractional": "yes", "size_precision": 13})
    assert caught.value.errors == {
        "fractional": ["must be true or false"],
        "size_precision": ["must be at most 12"],
    }


def test_strategy_spec_shapes() -> None:
    strategy = validate_strategy({"template": "macd"})
    assert strategy.spec == {"template": "macd", "params": {"fast": 12, "slow": 26, "signal": 9}}
    assert strategy.warmup == 35
    for bad, message in [
        ([], "must be an object"),
        ({}, "give either template (with params) or rules"),
        ({"template": "macd", "rules": {}}, "give either template (with params) or rules"),
        ({"template": "macd", "extra": 1}, "unknown key(s): extra"),
        ({"rules": {}, "params": {}}, "params go with a template, not with rules"),
    ]:
        with pytest.raises(ParamError) as caught:
            validate_strategy(bad)
        assert caught.value.errors == {"strategy": [message]}
    with pytest.raises(RuleError):
        validate_strategy({"rules": {"entry": {}}})


def test_catalogue_is_json_and_complete() -> None:
    data = json.loads(json.dumps(catalogue(), allow_nan=False))
    assert [t["key"] for t in data["templates"]] == list(TEMPLATES)
    sma = data["templates"][0]
    assert sma["params"][0] == {
        "name": "fast",
        "type": "int",
        "default": 20,
        "description": "Bars in the fast average.",
        "min": 1,
        "max": 1000,
        "nullable": False,
    }
    assert sma["constraints"] == ["fast < slow"]
    assert {p["name"] for p in data["risk"]} == {
        "stop_loss",
        "take_profit",
        "trailing_stop",
        "direction",
        "sizing",
        "fraction",
    }
    assert data["rules"]["limits"]["max_depth"] == 6
    assert data["engine_version"] == "1"


def test_sma_crossover_signals() -> None:
    candles = btc()
    signals = validate_strategy({"template": "sma_crossover", "params": {"fast": 5, "slow": 20}})
    out = signals.signals(candles)
    up, down = crossings(indicators.sma(candles.close, 5), indicators.sma(candles.close, 20))
    assert np.array_equal(out.long_entry, up) and np.array_equal(out.long_exit, down)
    assert np.array_equal(out.short_entry, down) and np.array_equal(out.short_exit, up)
    assert up.any() and down.any()


# The first bar at which each template can fire with its default parameters: one bar
# after its first defined value, since every signal is a crossing.
FIRST_SIGNAL = {
    "sma_crossover": 50,
    "ema_crossover": 26,
    "rsi_mean_reversion": 15,
    "bollinger_bands": 20,
    "macd": 34,
    "donchian_breakout": 11,  # the 10-bar exit channel is defined before the entry one
    "periodic_dca": 0,
}


@pytest.mark.parametrize("key", list(TEMPLATES))
def test_every_template_signals_after_its_warm_up_only(key: str) -> None:
    candles = btc()
    strategy = validate_strategy({"template": key})
    signals = strategy.signals(candles)
    assert len(signals) == len(candles)
    fired = signals.long_entry | signals.long_exit | signals.short_entry | signals.short_exit
    assert fired.any()
    assert not fired[: FIRST_SIGNAL[key]].any()
    assert strategy.warmup >= FIRST_SIGNAL[key]
    # Only bars <= t decide bar t: cutting the series keeps the earlier signals.
    cut = strategy.signals(Candles(*(getattr(candles, f)[:1_000] for f in Candles.__annotations__)))
    assert np.array_equal(cut.long_entry, signals.long_entry[:1_000])
    assert np.array_equal(cut.short_entry, signals.short_entry[:1_000])


def test_bollinger_template_is_mean_reversion() -> None:
    candles = btc()
    out = validate_strategy({"template": "bollinger_bands"}).signals(candles)
    bands = indicators.bollinger(candles.close, 20, 2.0)
    entries = np.flatnonzero(out.long_entry)
    exits = np.flatnonzero(out.long_exit)
    assert np.all(candles.close[entries] < bands.lower[entries])
    assert np.all(candles.close[exits] > bands.middle[exits])


def test_dca_schedule_is_anchored_to_the_epoch() -> None:
    ts = T0 + np.arange(10, dtype=np.int64) * M
    assert dca_schedule(ts, 4).tolist() == [(T0 // M + i) % 4 == 0 for i in range(10)]
    # The same bar buys whether or not earlier bars are in the series.
    assert dca_schedule(ts[3:], 4).tolist() == dca_schedule(ts, 4)[3:].tolist()
    assert dca_schedule(ts[:1], 1).tolist() == [True]
    signals = validate_strategy({"template": "periodic_dca", "params": {"every": 2}})
    out = signals.signals(btc(10))
    assert out.scale_in == 0.05 and out.long_entry.sum() == 5 and not out.long_exit.any()
