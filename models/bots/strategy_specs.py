"""The engine's validation of strategies and risk options, as domain errors with field paths.

Bots and backtests store the engine's canonical form (defaults filled in), so a
stored spec always runs as it read when it was saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.broker import validate_risk as engine_validate_risk
from engine.params import ParamError
from engine.rule_nodes import RuleError
from engine.strategies import catalogue
from engine.strategies import validate_strategy as engine_validate_strategy
from models.errors import Invalid


def strategy_family(strategy: Mapping[str, Any]) -> str:
    """A stored strategy's family: its template's key, or ``rules`` for the rule language."""
    template = strategy.get("template")
    return str(template) if template else "rules"


def validate_strategy(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical strategy spec; :class:`Invalid` with errors under ``json.strategy``."""
    try:
        return engine_validate_strategy(dict(spec)).spec
    except RuleError as exc:
        raise Invalid(
            "The strategy rules are invalid; see errors.",
            {"json": {"strategy": {"rules": exc.errors}}},
        ) from exc
    except ParamError as exc:
        shape = exc.errors.pop("strategy", None)
        errors: dict[str, Any] = {}
        if shape:
            errors["_schema"] = shape
        if "template" in exc.errors:
            errors["template"] = exc.errors.pop("template")
        if exc.errors:
            errors["params"] = exc.errors
        raise Invalid(
            "The strategy is invalid; see errors.", {"json": {"strategy": errors}}
        ) from exc


def validate_risk(risk: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical risk options; :class:`Invalid` with errors under ``json.risk``."""
    try:
        return engine_validate_risk(dict(risk)).as_dict()
    except ParamError as exc:
        raise Invalid(
            "The risk options are invalid; see errors.", {"json": {"risk": exc.errors}}
        ) from exc


def merge_risk(current: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any]:
    """``patch`` applied to ``current`` as a JSON merge patch (RFC 7396), before validation.

    Given options replace, absent ones keep their value, and ``null`` removes one, so that
    validation gives it its default (no exit, or the default choice); a ``null`` patch
    removes them all. Clients change one option without resending the others.
    """
    if patch is None:
        return {}
    merged = dict(current or {})
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def strategy_catalogue() -> dict[str, Any]:
    """Templates, parameter schemas, risk options and the rule grammar (JSON-safe)."""
    return catalogue()
