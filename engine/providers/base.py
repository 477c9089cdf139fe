"""What every market-data provider offers: instrument specs and 1m candles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from engine.candles import Candles

MINUTE_MS = 60_000
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{1,12}-[A-Z0-9]{1,12}$")
KINDS = ("crypto", "fx", "equity")


@dataclass(frozen=True)
class InstrumentSpec:
    """A tradable pair such as ``BTC-USD``: its parts, kind and display precisions.

    ``price_precision`` and ``size_precision`` are decimal places; ``fractional`` says
    whether fractions of a unit can be bought. Raises ValueError on a malformed spec.
    """

    symbol: str
    base: str
    quote: str
    kind: str
    price_precision: int
    size_precision: int
    fractional: bool

    def __post_init__(self) -> None:
        if not SYMBOL_PATTERN.match(self.symbol):
            raise ValueError(f"symbol {self.symbol!r} is not like 'BTC-USD'")
        if self.symbol != f"{self.base}-{self.quote}":
            raise ValueError(f"symbol {self.symbol!r} does not match {self.base}-{self.quote}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.price_precision < 0 or self.size_precision < 0:
            raise ValueError("precisions are decimal places and cannot be negative")


class MarketDataProvider(Protocol):
    """A source of 1m candles."""

    name: str

    def candles(self, spec: InstrumentSpec, start_ms: int, end_ms: int) -> Candles:
        """The 1m candles with ``start_ms <= ts < end_ms``, oldest first."""
        ...


def first_minute_at_or_after(ms: int) -> int:
    """The first minute boundary (epoch ms) at or after ``ms``."""
    return -(-ms // MINUTE_MS) * MINUTE_MS
