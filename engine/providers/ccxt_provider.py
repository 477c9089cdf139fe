"""Optional real-exchange provider over ccxt (``pip install -e '.[ccxt]'``).

ccxt itself is imported only by :meth:`CcxtProvider.from_exchange_id`; the rest takes
any object shaped like a ccxt exchange, which is how the tests drive it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from engine.candles import Candles
from engine.providers.base import MINUTE_MS, InstrumentSpec, first_minute_at_or_after


class ExchangeLike(Protocol):
    """The part of a ccxt exchange the provider uses."""

    @property
    def rateLimit(self) -> float:
        """Milliseconds to wait between requests."""
        ...

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[Any]]:
        """``[[ts_ms, open, high, low, close, volume], ...]`` from ``since``, oldest first."""
        ...


def ccxt_symbol(symbol: str) -> str:
    """ccxt's spelling of a symbol: ``BTC-USD`` becomes ``BTC/USD``."""
    return symbol.replace("-", "/", 1)


def candles_from_ccxt(
    ohlcv: Sequence[Sequence[Any]], timeframe_ms: int, now_ms: int | None = None
) -> Candles:
    """Validated candles from a ccxt ``fetch_ohlcv`` payload.

    A None volume counts as 0.0, and rows with a None price are dropped (some exchanges
    send them for minutes without trades), as are rows not aligned to ``timeframe_ms``.
    A repeated timestamp keeps its last row. With ``now_ms``, a bucket still forming
    (``ts + timeframe_ms > now_ms``) is dropped. Raises CandleError on inconsistent OHLC.
    """
    by_ts: dict[int, tuple[float, ...]] = {}
    for row in ohlcv:
        ts = int(row[0])
        if ts % timeframe_ms or any(value is None for value in row[1:5]):
            continue
        if now_ms is not None and ts + timeframe_ms > now_ms:
            continue
        volume = 0.0 if len(row) < 6 or row[5] is None else float(row[5])
        by_ts[ts] = (*(float(value) for value in row[1:5]), volume)
    if not by_ts:
        return Candles.empty()
    stamps = sorted(by_ts)
    table = np.array([by_ts[ts] for ts in stamps], dtype=np.float64)
    candles = Candles(np.array(stamps, dtype=np.int64), *(table[:, i] for i in range(5)))
    candles.validate()
    return candles


class CcxtProvider:
    """1m candles from a ccxt exchange, paged forward and paced by its ``rateLimit``."""

    name = "ccxt"

    def __init__(
        self,
        exchange: ExchangeLike,
        sleep: Callable[[float], None] = time.sleep,
        page_limit: int = 1000,
    ) -> None:
        self.exchange = exchange
        self.sleep = sleep
        self.page_limit = page_limit

    @classmethod
    def from_exchange_id(cls, exchange_id: str, **config: Any) -> CcxtProvider:
        """A provider over ``ccxt.<exchange_id>(config)``.

        Raises RuntimeError when ccxt is not installed, ValueError for an unknown id.
        """
        try:
            ccxt = importlib.import_module("ccxt")
        except ModuleNotFoundError as exc:
            if exc.name != "ccxt":
                raise
            raise RuntimeError(
                "The ccxt provider needs the ccxt package: pip install -e '.[ccxt]'"
            ) from exc
        exchange_class = getattr(ccxt, exchange_id, None)
        if not callable(exchange_class):
            raise ValueError(f"ccxt has no exchange {exchange_id!r}")
        return cls(exchange_class(config))

    def candles(self, spec: InstrumentSpec, start_ms: int, end_ms: int) -> Candles:
        """The 1m candles with ``start_ms <= ts < end_ms``; start rounds up to a minute.

        The provider has no clock, so a minute still forming at the exchange comes back
        if it is asked for: callers should ask only for closed minutes.
        """
        first = since = first_minute_at_or_after(start_ms)
        symbol = ccxt_symbol(spec.symbol)
        rows: list[Sequence[Any]] = []
        calls = 0
        while since < end_ms:
            if calls:
                self.sleep(self.exchange.rateLimit / 1000)
            page = self.exchange.fetch_ohlcv(symbol, "1m", since, self.page_limit)
            calls += 1
            newest = max((int(row[0]) for row in page), default=None)
            # An empty page is the end of the data; a page that does not reach past
            # `since` would make the next request the same one, forever.
            if newest is None or newest < since:
                break
            rows.extend(page)
            since = newest + MINUTE_MS
        return candles_from_ccxt(rows, MINUTE_MS).between(first, end_ms)
