"""Built-in strategy templates: parameter schemas and vectorized signals.

Every template is event based: it signals on the bar where a condition starts to hold
(a crossing under the rule in :mod:`engine.signals`), not on every bar it holds. Short
signals are always produced; the backtester ignores them when trading long only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine import indicators
from engine.candles import Candles
from engine.params import Below, Param, ParamError, Value, validate_values
from engine.signals import BoolArray, Signals, crossings

MAX_PERIOD = 1000
Params = Mapping[str, Any]


@dataclass(frozen=True)
class Template:
    """A strategy template: published schema, cross-field rules and its signal function."""

    key: str
    name: str
    description: str
    params: tuple[Param, ...]
    signals: Callable[[Candles, Params], Signals]
    warmup: Callable[[Params], int]
    rules: tuple[Below, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description for the catalogue."""
        return {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "params": [param.as_dict() for param in self.params],
            "constraints": [f"{rule.lower} < {rule.upper}" for rule in self.rules],
        }


def _period(name: str, default: int, description: str, low: int = 1) -> Param:
    return Param(name, "int", default, description, min=low, max=MAX_PERIOD)


def _mirrored(entry: BoolArray, exit_: BoolArray) -> Signals:
    """Long on ``entry``, out on ``exit_``; shorts the other way round."""
    return Signals(entry, exit_, exit_, entry)


def _crossover(average: Callable[[Any, int], Any]) -> Callable[[Candles, Params], Signals]:
    def signals(candles: Candles, params: Params) -> Signals:
        fast = average(candles.close, params["fast"])
        slow = average(candles.close, params["slow"])
        return _mirrored(*crossings(fast, slow))

    return signals


def _rsi_signals(candles: Candles, params: Params) -> Signals:
    rsi = indicators.rsi(candles.close, params["period"])
    entry = crossings(rsi, params["oversold"])[1]
    exit_ = crossings(rsi, params["overbought"])[0]
    return _mirrored(entry, exit_)


def _bollinger_signals(candles: Candles, params: Params) -> Signals:
    bands = indicators.bollinger(candles.close, params["period"], params["k"])
    close = candles.close
    above_mid, below_mid = crossings(close, bands.middle)
    return Signals(
        crossings(close, bands.lower)[1],
        above_mid,
        crossings(close, bands.upper)[0],
        below_mid,
    )


def _macd_signals(candles: Candles, params: Params) -> Signals:
    macd = indicators.macd(candles.close, params["fast"], params["slow"], params["signal"])
    return _mirrored(*crossings(macd.line, macd.signal))


def _donchian_signals(candles: Candles, params: Params) -> Signals:
    close = candles.close
    entry = indicators.donchian(candles.high, candles.low, params["entry_period"])
    exit_ = indicators.donchian(candles.high, candles.low, params["exit_period"])
    return Signals(
        crossings(close, entry.upper)[0],
        crossings(close, exit_.lower)[1],
        crossings(close, entry.lower)[1],
        crossings(close, exit_.upper)[0],
    )


def dca_schedule(ts: NDArray[np.int64], every: int) -> BoolArray:
    """Bars whose index since the epoch, ``ts // bar_ms``, is a multiple of ``every``.

    ``bar_ms`` is the smallest gap between consecutive timestamps, so the schedule
    depends on each bar's time only, never on where the series starts. With fewer than
    two bars the interval is unknown and only ``every == 1`` buys.
    """
    stamps = np.asarray(ts, dtype=np.int64)
    if len(stamps) < 2:
        return np.full(len(stamps), every == 1, dtype=np.bool_)
    bar_ms = int(np.diff(stamps).min())
    return np.asarray((stamps // bar_ms) % every == 0, dtype=np.bool_)


def _dca_signals(candles: Candles, params: Params) -> Signals:
    buys = dca_schedule(candles.ts, params["every"])
    never = np.zeros(len(candles), dtype=np.bool_)
    return Signals(buys, never, never, never, scale_in=params["amount"])


_FAST = "Bars in the fast average."
_SLOW = "Bars in the slow average; must exceed fast."

TEMPLATES: dict[str, Template] = {
    t.key: t
    for t in (
        Template(
            "sma_crossover",
            "SMA crossover",
            "Long when the fast SMA of closes crosses above the slow one, out (or short) "
            "when it crosses below.",
            (_period("fast", 20, _FAST), _period("slow", 50, _SLOW)),
            _crossover(indicators.sma),
            lambda p: int(p["slow"]) + 1,
            (Below("fast", "slow"),),
        ),
        Template(
            "ema_crossover",
            "EMA crossover",
            "Long when the fast EMA of closes crosses above the slow one, out (or short) "
            "when it crosses below. EMAs are seeded with the SMA of their first bars.",
            (_period("fast", 12, _FAST), _period("slow", 26, _SLOW)),
            _crossover(indicators.ema),
            lambda p: int(p["slow"]) + 1,
            (Below("fast", "slow"),),
        ),
        Template(
            "rsi_mean_reversion",
            "RSI mean reversion",
            "Long when the RSI crosses below oversold, out when it crosses above "
            "overbought; shorts the other way round.",
            (
                _period("period", 14, "RSI period in bars (Wilder smoothing).", low=2),
                Param("oversold", "float", 30.0, "RSI level to buy below.", min=0, max=100),
                Param("overbought", "float", 70.0, "RSI level to sell above.", min=0, max=100),
            ),
            _rsi_signals,
            lambda p: int(p["period"]) + 2,
            (Below("oversold", "overbought"),),
        ),
        Template(
            "bollinger_bands",
            "Bollinger bands mean reversion",
            "Long when the close crosses below the lower band, out when it crosses back "
            "above the middle band; short when it crosses above the upper band, covered "
            "when it crosses below the middle.",
            (
                _period("period", 20, "Bars in the moving average and deviation.", low=2),
                Param("k", "float", 2.0, "Band width in population std devs.", min=0.1, max=10),
            ),
            _bollinger_signals,
            lambda p: int(p["period"]) + 1,
        ),
        Template(
            "macd",
            "MACD signal crossover",
            "Long when the MACD line (fast EMA - slow EMA) crosses above its signal EMA, "
            "out (or short) when it crosses below.",
            (
                _period("fast", 12, "Fast EMA period."),
                _period("slow", 26, "Slow EMA period; must exceed fast."),
                _period("signal", 9, "EMA period of the signal line."),
            ),
            _macd_signals,
            lambda p: int(p["slow"]) + int(p["signal"]),
            (Below("fast", "slow"),),
        ),
        Template(
            "donchian_breakout",
            "Donchian breakout",
            "Long when the close crosses above the highest high of the previous "
            "entry_period bars, out when it crosses below the lowest low of the previous "
            "exit_period bars; shorts mirror it.",
            (
                _period("entry_period", 20, "Bars in the breakout channel."),
                _period("exit_period", 10, "Bars in the exit channel."),
            ),
            _donchian_signals,
            lambda p: max(int(p["entry_period"]), int(p["exit_period"])) + 2,
        ),
        Template(
            "periodic_dca",
            "Periodic DCA",
            "Buys amount x initial capital (or the cash left, if less) on every bar whose "
            "index since the epoch is a multiple of every; never sells unless a risk exit "
            "fires, after which buying starts a new position. Risk sizing does not apply.",
            (
                Param("every", "int", 24, "Bars between buys.", min=1, max=100_000),
                Param("amount", "float", 0.05, "Fraction of initial capital per buy.", 0.0001, 1),
            ),
            _dca_signals,
            lambda p: 0,
        ),
    )
}


def get_template(key: object) -> Template:
    """The template named ``key``; raises ParamError (on ``template``) if there is none."""
    if not isinstance(key, str) or key not in TEMPLATES:
        raise ParamError({"template": [f"unknown template; one of: {', '.join(TEMPLATES)}"]})
    return TEMPLATES[key]


def validate_params(template_key: object, params: object) -> dict[str, Value]:
    """``params`` for the template with defaults filled in; raises ParamError per field."""
    template = get_template(template_key)
    return validate_values(template.params, params, template.rules)
