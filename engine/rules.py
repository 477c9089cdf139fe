"""The declarative rule language: validation of its JSON and compilation to numpy.

See :mod:`engine.rule_nodes` for the shape. ``validate_rules`` collects every problem,
keyed by path (``entry.all[1].left.period``), into one RuleError; ``compile_rules`` turns
validated rules into a function from candles to :class:`~engine.signals.Signals`. No
user input is ever evaluated as code: each node maps onto a fixed numpy operation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine import indicators
from engine.candles import Candles
from engine.rule_nodes import (
    COMPARISONS,
    INDICATORS,
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_K,
    MAX_NODES,
    MAX_PERIOD,
    OUTPUTS,
    PRICE_FIELDS,
    REQUIRED_SECTIONS,
    SECTIONS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Const,
    Expr,
    Indicator,
    Price,
    RuleError,
    Rules,
)
from engine.signals import BoolArray, FloatArray, Signals, crossings

__all__ = ["RuleError", "Rules", "compile_rules", "grammar", "validate_rules"]


class _Parser:
    """Walks the JSON once, collecting every error by path, and builds the nodes."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.nodes = 0

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    def _object(self, obj: object, path: str, depth: int) -> dict[str, Any] | None:
        self.nodes += 1
        if not isinstance(obj, dict):
            self.fail(path, "must be an object")
            return None
        if depth > MAX_DEPTH:
            self.fail(path, f"nested deeper than {MAX_DEPTH} levels")
            return None
        return obj

    def _unknown(self, obj: dict[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.fail(f"{path}.{key}", "unknown key")

    def condition(self, obj: object, path: str, depth: int) -> Condition | None:
        node = self._object(obj, path, depth)
        if node is None:
            return None
        for key, kind in (("all", AllOf), ("any", AnyOf)):
            if key in node:
                self._unknown(node, (key,), path)
                return self._group(node[key], f"{path}.{key}", depth, kind)
        if "op" not in node:
            self.fail(path, "must have one of the keys all, any or op")
            self._unknown(node, ("op", "left", "right"), path)
            return None
        self._unknown(node, ("op", "left", "right"), path)
        op = node["op"]
        if op not in COMPARISONS:
            self.fail(f"{path}.op", f"must be one of: {', '.join(COMPARISONS)}")
        sides: list[Expr | None] = []
        for side in ("left", "right"):
            if side not in node:
                self.fail(f"{path}.{side}", "required")
                sides.append(None)
            else:
                sides.append(self.expression(node[side], f"{path}.{side}", depth + 1))
        left, right = sides
        if op not in COMPARISONS or left is None or right is None:
            return None
        return Compare(op, left, right)

    def _group(
        self, items: object, path: str, depth: int, kind: type[AllOf] | type[AnyOf]
    ) -> Condition | None:
        if not isinstance(items, list) or not items:
            self.fail(path, "must be a non-empty list")
            return None
        if len(items) > MAX_ITEMS:
            self.fail(path, f"has {len(items)} items; at most {MAX_ITEMS} allowed")
            return None
        parsed = [self.condition(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(items)]
        conds = [c for c in parsed if c is not None]
        return kind(tuple(conds)) if len(conds) == len(parsed) else None

    def expression(self, obj: object, path: str, depth: int) -> Expr | None:
        node = self._object(obj, path, depth)
        if node is None:
            return None
        if "price" in node:
            self._unknown(node, ("price",), path)
            if node["price"] not in PRICE_FIELDS:
                self.fail(f"{path}.price", f"must be one of: {', '.join(PRICE_FIELDS)}")
                return None
            return Price(node["price"])
        if "const" in node:
            self._unknown(node, ("const",), path)
            value = self._number(node["const"], f"{path}.const")
            return None if value is None else Const(value)
        if "ind" in node:
            return self._indicator(node, path)
        self.fail(path, "must have one of the keys price, const or ind")
        return None

    def _number(self, raw: object, path: str) -> float | None:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            self.fail(path, "must be a finite number")
            return None
        return float(raw)

    def _period(self, node: dict[str, Any], key: str, path: str) -> int | None:
        raw = node[key]
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_PERIOD:
            self.fail(f"{path}.{key}", f"must be a whole number from 1 to {MAX_PERIOD}")
            return None
        return raw

    def _choice(self, node: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> bool:
        if node[key] in allowed:
            return True
        self.fail(f"{path}.{key}", f"must be one of: {', '.join(allowed)}")
        return False

    def _indicator(self, node: dict[str, Any], path: str) -> Indicator | None:
        name = node["ind"]
        if name not in INDICATORS:
            self.fail(f"{path}.ind", f"must be one of: {', '.join(INDICATORS)}")
            return None
        periods, others, optional = INDICATORS[name]
        self._unknown(node, ("ind", *periods, *others, *optional), path)
        missing = [key for key in (*periods, *others) if key not in node]
        for key in missing:
            self.fail(f"{path}.{key}", "required")
        fields: dict[str, Any] = {key: node[key] for key in (*others, *optional) if key in node}
        ok = not missing
        for key in periods:
            if key in node:
                fields[key] = self._period(node, key, path)
                ok = ok and fields[key] is not None
        if "k" in fields:
            fields["k"] = self._number(fields["k"], f"{path}.k")
            if fields["k"] is not None and not 0 < fields["k"] <= MAX_K:
                self.fail(f"{path}.k", f"must be above 0 and at most {MAX_K:g}")
                fields["k"] = None
            ok = ok and fields["k"] is not None
        if "output" in fields:
            ok = self._choice(node, "output", path, OUTPUTS[name]) and ok
        if "source" in fields:
            ok = self._choice(node, "source", path, PRICE_FIELDS) and ok
        if ok and name == "macd" and fields["fast"] >= fields["slow"]:
            self.fail(f"{path}.slow", f"must be greater than fast ({fields['fast']})")
            ok = False
        return Indicator(name, **fields) if ok else None


def validate_rules(obj: object) -> Rules:
    """Typed rules from their JSON form; raises RuleError with every problem by path."""
    parser = _Parser()
    if not isinstance(obj, dict):
        raise RuleError({"rules": ["must be an object"]})
    for key in obj:
        if key not in SECTIONS:
            parser.fail(str(key), "unknown key")
    sections: dict[str, Condition | None] = {}
    for name in SECTIONS:
        if name in obj:
            sections[name] = parser.condition(obj[name], name, 1)
        elif name in REQUIRED_SECTIONS:
            parser.fail(name, "required")
    if parser.nodes > MAX_NODES:
        parser.fail("rules", f"has {parser.nodes} nodes; at most {MAX_NODES} allowed")
    if parser.errors:
        raise RuleError(parser.errors)
    entry, exit_ = sections["entry"], sections["exit"]
    if entry is None or exit_ is None:  # unreachable: a failed section records an error
        raise RuleError({"rules": ["could not be parsed"]})
    return Rules(entry, exit_, sections.get("short_entry"), sections.get("short_exit"))


class _Evaluator:
    """Evaluates nodes over one series of candles, computing each indicator once."""

    def __init__(self, candles: Candles) -> None:
        self.candles = candles
        self.cache: dict[Expr, FloatArray] = {}
        self.crosses: dict[tuple[Expr, Expr], tuple[BoolArray, BoolArray]] = {}

    def series(self, expr: Expr) -> FloatArray:
        if expr not in self.cache:
            self.cache[expr] = self._compute(expr)
        return self.cache[expr]

    def _compute(self, expr: Expr) -> FloatArray:
        c = self.candles
        if isinstance(expr, Price):
            return np.asarray(getattr(c, expr.field), dtype=np.float64)
        if isinstance(expr, Const):
            return np.full(len(c), expr.value)
        if expr.name == "macd":
            macd = indicators.macd(c.close, expr.fast, expr.slow, expr.signal)
            return {"line": macd.line, "signal": macd.signal, "hist": macd.hist}[expr.output]
        if expr.name == "bollinger":
            bands = indicators.bollinger(c.close, expr.period, expr.k)
            return {"upper": bands.upper, "middle": bands.middle, "lower": bands.lower}[expr.output]
        simple: dict[str, Callable[[], FloatArray]] = {
            "sma": lambda: indicators.sma(getattr(c, expr.source), expr.period),
            "ema": lambda: indicators.ema(getattr(c, expr.source), expr.period),
            "rsi": lambda: indicators.rsi(c.close, expr.period),
            "atr": lambda: indicators.atr(c.high, c.low, c.close, expr.period),
        }
        return simple[expr.name]()

    def condition(self, cond: Condition) -> BoolArray:
        if isinstance(cond, AllOf | AnyOf):
            parts = [self.condition(item) for item in cond.items]
            combine = np.logical_and if isinstance(cond, AllOf) else np.logical_or
            return np.asarray(combine.reduce(parts), dtype=np.bool_)
        if cond.op in ("crosses_above", "crosses_below"):
            key = (cond.left, cond.right)
            if key not in self.crosses:
                self.crosses[key] = crossings(self.series(cond.left), self.series(cond.right))
            return self.crosses[key][0 if cond.op == "crosses_above" else 1]
        compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
        # NaN (warm-up) compares False, so no condition holds before its inputs exist.
        return np.asarray(
            compare[cond.op](self.series(cond.left), self.series(cond.right)), dtype=np.bool_
        )


def compile_rules(rules: Rules) -> Callable[[Candles], Signals]:
    """A function from candles to signals for validated rules (a missing side never fires)."""

    def signals(candles: Candles) -> Signals:
        evaluator = _Evaluator(candles)
        never = np.zeros(len(candles), dtype=np.bool_)
        return Signals(
            evaluator.condition(rules.entry),
            evaluator.condition(rules.exit),
            never if rules.short_entry is None else evaluator.condition(rules.short_entry),
            never if rules.short_exit is None else evaluator.condition(rules.short_exit),
        )

    return signals


def grammar() -> dict[str, Any]:
    """JSON-safe description of the rule language and its limits, for the catalogue."""
    return {
        "sections": {
            "required": list(REQUIRED_SECTIONS),
            "optional": [name for name in SECTIONS if name not in REQUIRED_SECTIONS],
        },
        "conditions": {
            "all": "list of conditions, all must hold",
            "any": "list of conditions, at least one must hold",
            "op": {"ops": list(COMPARISONS), "operands": ["left", "right"]},
        },
        "expressions": {
            "price": list(PRICE_FIELDS),
            "const": "finite number",
            "ind": {
                name: {
                    "required": [*periods, *others],
                    "optional": list(optional),
                    **({"outputs": list(OUTPUTS[name])} if name in OUTPUTS else {}),
                }
                for name, (periods, others, optional) in INDICATORS.items()
            },
        },
        "limits": {
            "max_depth": MAX_DEPTH,
            "max_nodes": MAX_NODES,
            "max_items": MAX_ITEMS,
            "period": [1, MAX_PERIOD],
            "k": [0, MAX_K],
        },
        "crossing": "a crosses above b at bar t iff a - b > 0 at t and < 0 at the latest "
        "earlier bar where it is neither 0 nor undefined; a tie is no cross",
    }
