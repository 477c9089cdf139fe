"""Strategy specs (a template with params, or rules) and the published catalogue.

A spec is ``{"template": key, "params": {...}}`` or ``{"rules": {...}}``.
:func:`validate_strategy` checks it (ParamError / RuleError with per-field messages) and
returns a :class:`Strategy` whose ``spec`` is the canonical form with defaults filled in,
the snapshot a backtest stores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.broker import CONFIG_PARAMS, RISK_PARAMS
from engine.candles import Candles
from engine.params import ParamError
from engine.rules import compile_rules, grammar, validate_rules
from engine.signals import Signals
from engine.templates import TEMPLATES, get_template, validate_params
from engine.version import ENGINE_VERSION


@dataclass(frozen=True, eq=False)
class Strategy:
    """A validated strategy: its canonical spec, warm-up and signal function."""

    spec: dict[str, Any]
    warmup: int
    compute: Callable[[Candles], Signals]

    def signals(self, candles: Candles) -> Signals:
        """Signals for every bar of ``candles`` (bar t uses bars <= t only)."""
        return self.compute(candles)


def validate_strategy(spec: object) -> Strategy:
    """A strategy from its JSON spec; raises ParamError or RuleError.

    Shape errors (neither or both of template and rules, unknown keys) are ParamErrors
    keyed ``strategy``; template problems are keyed by parameter, rule problems by path.
    """
    if not isinstance(spec, Mapping):
        raise ParamError({"strategy": ["must be an object"]})
    unknown = sorted(str(key) for key in spec if key not in ("template", "params", "rules"))
    if unknown:
        raise ParamError({"strategy": [f"unknown key(s): {', '.join(unknown)}"]})
    if ("template" in spec) == ("rules" in spec):
        raise ParamError({"strategy": ["give either template (with params) or rules"]})
    if "rules" in spec:
        if "params" in spec:
            raise ParamError({"strategy": ["params go with a template, not with rules"]})
        rules = validate_rules(spec["rules"])
        return Strategy({"rules": rules.as_dict()}, rules.warmup, compile_rules(rules))
    template = get_template(spec["template"])
    params = validate_params(template.key, spec.get("params", {}))
    return Strategy(
        {"template": template.key, "params": params},
        template.warmup(params),
        lambda candles: template.signals(candles, params),
    )


def catalogue() -> dict[str, Any]:
    """Templates with parameter schemas, risk and cost options and the rule grammar.

    JSON-serialisable; served as-is by ``GET /api/v1/strategies``.
    """
    return {
        "engine_version": ENGINE_VERSION,
        "templates": [template.as_dict() for template in TEMPLATES.values()],
        "risk": [param.as_dict() for param in RISK_PARAMS],
        "costs": [param.as_dict() for param in CONFIG_PARAMS],
        "rules": grammar(),
        "fills": (
            "A signal on bar t's close fills at bar t+1's open; commission is fee x notional "
            "on every fill; slippage moves every fill price against the trader by "
            "slippage_bps. Stops are checked intrabar from the entry bar on and fill at "
            "the stop level, or at the open when a bar gaps through it; a stop beats a "
            "take-profit touched in the same bar."
        ),
    }
