"""The rule language's typed nodes, limits and canonical JSON form.

Shape: ``{"entry": cond, "exit": cond, "short_entry"?: cond, "short_exit"?: cond}``.
A condition is ``{"all": [cond, ...]}``, ``{"any": [cond, ...]}`` or
``{"op": "<"|"<="|">"|">="|"crosses_above"|"crosses_below", "left": expr, "right": expr}``.
An expression is ``{"price": field}``, ``{"const": number}`` or ``{"ind": name, ...}``
(see ``INDICATORS``). :mod:`engine.rules` validates JSON into these nodes and compiles
them to numpy; nothing is ever evaluated as code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_DEPTH = 6
MAX_NODES = 64
MAX_ITEMS = 16
MAX_PERIOD = 1000
MAX_K = 10.0
SECTIONS = ("entry", "exit", "short_entry", "short_exit")
REQUIRED_SECTIONS = ("entry", "exit")
PRICE_FIELDS = ("open", "high", "low", "close", "volume")
COMPARISONS = ("<", "<=", ">", ">=", "crosses_above", "crosses_below")

# Indicator -> (required integer periods, other required keys, optional keys).
INDICATORS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "sma": (("period",), (), ("source",)),
    "ema": (("period",), (), ("source",)),
    "rsi": (("period",), (), ()),
    "atr": (("period",), (), ()),
    "macd": (("fast", "slow", "signal"), ("output",), ()),
    "bollinger": (("period",), ("k", "output"), ()),
}
OUTPUTS = {"macd": ("line", "signal", "hist"), "bollinger": ("upper", "middle", "lower")}


class RuleError(ValueError):
    """Invalid rules; ``errors`` maps each offending path to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{key}: {', '.join(msgs)}" for key, msgs in errors.items())
        super().__init__(f"invalid rules: {summary}")


@dataclass(frozen=True)
class Price:
    """A candle column."""

    field: str


@dataclass(frozen=True)
class Const:
    """A finite number."""

    value: float


@dataclass(frozen=True)
class Indicator:
    """An indicator series; fields that do not apply to ``name`` keep their zero value."""

    name: str
    period: int = 0
    source: str = "close"
    fast: int = 0
    slow: int = 0
    signal: int = 0
    k: float = 0.0
    output: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON form (only the keys that apply)."""
        periods, others, optional = INDICATORS[self.name]
        out: dict[str, Any] = {"ind": self.name}
        for key in (*periods, *others, *optional):
            out[key] = getattr(self, key)
        return out

    @property
    def first_value(self) -> int:
        """Index of the first bar with a value (the warm-up length)."""
        if self.name == "macd":
            first = self.slow + self.signal - 2
            return first if self.output != "line" else self.slow - 1
        return self.period if self.name == "rsi" else self.period - 1


Expr = Price | Const | Indicator


@dataclass(frozen=True)
class Compare:
    """``left op right`` per bar."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class AllOf:
    """Every item holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds."""

    items: tuple[Condition, ...]


Condition = Compare | AllOf | AnyOf


def expr_as_dict(expr: Expr) -> dict[str, Any]:
    """The canonical JSON form of an expression."""
    if isinstance(expr, Price):
        return {"price": expr.field}
    if isinstance(expr, Const):
        return {"const": expr.value}
    return expr.as_dict()


def condition_as_dict(cond: Condition) -> dict[str, Any]:
    """The canonical JSON form of a condition."""
    if isinstance(cond, Compare):
        return {"op": cond.op, "left": expr_as_dict(cond.left), "right": expr_as_dict(cond.right)}
    key = "all" if isinstance(cond, AllOf) else "any"
    return {key: [condition_as_dict(item) for item in cond.items]}


def _expressions(cond: Condition) -> list[Expr]:
    if isinstance(cond, Compare):
        return [cond.left, cond.right]
    return [expr for item in cond.items for expr in _expressions(item)]


@dataclass(frozen=True)
class Rules:
    """Validated rules: long entry/exit and optional short entry/exit conditions."""

    entry: Condition
    exit: Condition
    short_entry: Condition | None = None
    short_exit: Condition | None = None

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what a spec snapshot stores)."""
        out = {"entry": condition_as_dict(self.entry), "exit": condition_as_dict(self.exit)}
        for name in ("short_entry", "short_exit"):
            cond = getattr(self, name)
            if cond is not None:
                out[name] = condition_as_dict(cond)
        return out

    @property
    def warmup(self) -> int:
        """Bars of history before every indicator, and a crossing of it, can be defined."""
        sections = [c for c in (self.entry, self.exit, self.short_entry, self.short_exit) if c]
        exprs = [e for cond in sections for e in _expressions(cond)]
        return max((e.first_value + 2 for e in exprs if isinstance(e, Indicator)), default=2)
