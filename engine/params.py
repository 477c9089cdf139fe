"""Published parameter schemas and their validation, with per-field error messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ParamType = Literal["int", "float", "bool", "choice"]
Value = int | float | bool | str | None


class ParamError(ValueError):
    """Invalid parameters; ``errors`` maps each offending field to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{key}: {', '.join(msgs)}" for key, msgs in errors.items())
        super().__init__(f"invalid parameters: {summary}")


@dataclass(frozen=True)
class Param:
    """One parameter: its type, inclusive bounds, default and meaning.

    ``nullable`` parameters accept None (JSON null), which means "off".
    """

    name: str
    type: ParamType
    default: Value
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description, as published in the strategy catalogue."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "description": self.description,
        }
        if self.type in ("int", "float"):
            out["min"], out["max"] = self.min, self.max
        if self.type == "choice":
            out["choices"] = list(self.choices)
        out["nullable"] = self.nullable
        return out


@dataclass(frozen=True)
class Below:
    """Cross-field rule: ``values[lower] < values[upper]``; reported on ``upper``."""

    lower: str
    upper: str


def _number_text(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if float(value).is_integer() else str(value)


def _number(param: Param, raw: object) -> tuple[Value, str | None]:
    kind = "an integer" if param.type == "int" else "a number"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None, f"must be {kind}"
    if not math.isfinite(raw):
        return None, "must be finite"
    if param.type == "int" and isinstance(raw, float) and not raw.is_integer():
        return None, "must be an integer"
    value = int(raw) if param.type == "int" else float(raw)
    if param.min is not None and value < param.min:
        return None, f"must be at least {_number_text(param.min)}"
    if param.max is not None and value > param.max:
        return None, f"must be at most {_number_text(param.max)}"
    return value, None


def _coerce(param: Param, raw: object) -> tuple[Value, str | None]:
    """The value converted to the parameter's type, or an error message."""
    if raw is None:
        return (None, None) if param.nullable else (None, "must not be null")
    if param.type == "bool":
        return (raw, None) if isinstance(raw, bool) else (None, "must be true or false")
    if param.type == "choice":
        if isinstance(raw, str) and raw in param.choices:
            return raw, None
        return None, f"must be one of: {', '.join(param.choices)}"
    return _number(param, raw)


def validate_values(
    schema: tuple[Param, ...], values: object, rules: tuple[Below, ...] = ()
) -> dict[str, Value]:
    """Values checked against ``schema`` with defaults filled in; raises ParamError.

    Errors are keyed by parameter name (``"params"`` when values is not an object).
    """
    if not isinstance(values, Mapping):
        raise ParamError({"params": ["must be an object"]})
    known = {param.name for param in schema}
    errors: dict[str, list[str]] = {}
    for key in values:
        if key not in known:
            errors.setdefault(str(key), []).append("unknown parameter")
    out: dict[str, Value] = {}
    for param in schema:
        value, problem = _coerce(param, values.get(param.name, param.default))
        if problem is not None:
            errors.setdefault(param.name, []).append(problem)
        else:
            out[param.name] = value
    for rule in rules:
        low, high = out.get(rule.lower), out.get(rule.upper)
        if isinstance(low, int | float) and isinstance(high, int | float) and not low < high:
            errors.setdefault(rule.upper, []).append(
                f"must be greater than {rule.lower} ({_number_text(low)})"
            )
    if errors:
        raise ParamError(errors)
    return out
