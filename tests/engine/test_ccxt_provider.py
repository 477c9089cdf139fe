"""The ccxt provider against a fake exchange that answers in ccxt's format."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from engine.candles import CandleError
from engine.providers.base import InstrumentSpec
from engine.providers.ccxt_provider import CcxtProvider, candles_from_ccxt, ccxt_symbol

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SPEC = InstrumentSpec("BTC-USD", "BTC", "USD", "crypto", 2, 6, True)


def minute_rows(count: int) -> list[list[Any]]:
    return [[T0 + i * M, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, float(i)] for i in range(count)]


class FakeExchange:
    """Serves stored 1m rows from ``since``, at most ``cap`` a page, like an exchange."""

    rateLimit = 1500

    def __init__(self, rows: list[list[Any]], cap: int = 10_000, ignore_since: bool = False):
        self.rows = rows
        self.cap = cap
        self.ignore_since = ignore_since
        self.calls: list[tuple[str, str, int, int]] = []

    def fetch_ohlcv(
        self, symbol: str, timeframe: str, since: int | None, limit: int | None
    ) -> list[list[Any]]:
        assert since is not None and limit is not None
        self.calls.append((symbol, timeframe, since, limit))
        start = T0 if self.ignore_since else since
        return [row for row in self.rows if row[0] >= start][: min(limit, self.cap)]


def provider_for(exchange: FakeExchange, page_limit: int) -> tuple[CcxtProvider, list[float]]:
    sleeps: list[float] = []
    return CcxtProvider(exchange, sleep=sleeps.append, page_limit=page_limit), sleeps


def test_ccxt_symbol() -> None:
    assert ccxt_symbol("BTC-USD") == "BTC/USD"
    assert ccxt_symbol("AAPL-USD") == "AAPL/USD"


def test_conversion_fills_drops_dedupes_and_sorts() -> None:
    candles = candles_from_ccxt(
        [
            [T0 + M, 2.0, 3.0, 1.0, 2.5, None],
            [T0, 1.0, 2.0, 0.5, 1.5, 10.0],
            [T0 + 30_000, 1.0, 2.0, 0.5, 1.5, 10.0],  # not on a minute
            [T0 + 2 * M, None, None, None, None, 0.0],  # an exchange's empty minute
            [T0 + M, 2.0, 3.5, 1.0, 3.0, 7.0],  # the exchange revised the minute
        ],
        M,
    )
    assert candles.to_rows() == [
        [T0, 1.0, 2.0, 0.5, 1.5, 10.0],
        [T0 + M, 2.0, 3.5, 1.0, 3.0, 7.0],
    ]
    assert candles_from_ccxt([[T0 + M, 2.0, 3.0, 1.0, 2.5, None]], M).volume.tolist() == [0.0]


def test_conversion_drops_the_forming_bucket() -> None:
    five = 5 * M
    rows = [[T0, 1.0, 2.0, 0.5, 1.5, 1.0], [T0 + five, 1.5, 2.0, 1.0, 1.2, 2.0]]
    assert candles_from_ccxt(rows, five, now_ms=T0 + five + 1).ts.tolist() == [T0]
    assert candles_from_ccxt(rows, five, now_ms=T0 + 2 * five).ts.tolist() == [T0, T0 + five]
    assert candles_from_ccxt(rows, five).ts.tolist() == [T0, T0 + five]
    assert len(candles_from_ccxt([], five)) == 0


def test_conversion_validates() -> None:
    with pytest.raises(CandleError, match=r"high 1\.0 is below open 2\.0"):
        candles_from_ccxt([[T0, 2.0, 1.0, 0.5, 1.0, 1.0]], M)


def test_pages_forward_until_the_end_sleeping_between_calls() -> None:
    exchange = FakeExchange(minute_rows(10))
    provider, sleeps = provider_for(exchange, page_limit=4)
    candles = provider.candles(SPEC, T0, T0 + 10 * M)
    assert candles.to_rows() == minute_rows(10)
    assert exchange.calls == [
        ("BTC/USD", "1m", T0, 4),
        ("BTC/USD", "1m", T0 + 4 * M, 4),
        ("BTC/USD", "1m", T0 + 8 * M, 4),
    ]
    assert sleeps == [1.5, 1.5]
    assert provider.name == "ccxt"


def test_stops_at_an_empty_page_and_trims_to_the_span() -> None:
    exchange = FakeExchange(minute_rows(10), cap=3)
    provider, sleeps = provider_for(exchange, page_limit=1000)
    candles = provider.candles(SPEC, T0 + 1, T0 + 60 * M)
    assert candles.to_rows() == minute_rows(10)[1:]
    assert [call[2] for call in exchange.calls] == [T0 + M, T0 + 4 * M, T0 + 7 * M, T0 + 10 * M]
    assert sleeps == [1.5, 1.5, 1.5]

    exchange = FakeExchange(minute_rows(10))
    provider, sleeps = provider_for(exchange, page_limit=1000)
    assert provider.candles(SPEC, T0 + 2 * M, T0 + 5 * M).to_rows() == minute_rows(5)[2:]
    assert len(exchange.calls) == 1 and sleeps == []


def test_stops_when_a_page_makes_no_progress() -> None:
    exchange = FakeExchange(minute_rows(10), ignore_since=True)
    provider, sleeps = provider_for(exchange, page_limit=4)
    assert provider.candles(SPEC, T0, T0 + 60 * M).to_rows() == minute_rows(4)
    assert [call[2] for call in exchange.calls] == [T0, T0 + 4 * M]
    assert sleeps == [1.5]


def test_from_exchange_id_without_ccxt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)  # makes `import ccxt` fail
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[ccxt\]'"):
        CcxtProvider.from_exchange_id("kraken")


def test_from_exchange_id_builds_the_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    class Kraken(FakeExchange):
        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__([])
            self.config = config

    monkeypatch.setitem(sys.modules, "ccxt", types.SimpleNamespace(kraken=Kraken))
    provider = CcxtProvider.from_exchange_id("kraken", enableRateLimit=True)
    assert isinstance(provider.exchange, Kraken)
    assert provider.exchange.config == {"enableRateLimit": True}
    with pytest.raises(ValueError, match="ccxt has no exchange 'nope'"):
        CcxtProvider.from_exchange_id("nope")
