"""Instruments, quotes and candles over HTTP, with the cache in front of Postgres."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from engine.candles import Candles, resample
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.market import cache as market_cache
from models.market.cache import CandleCache, chunk_key, response_key
from models.market.candles import read_candles
from models.market.data import load_history
from models.market.instruments import sync_instruments
from models.market.responses import PROCESS_RESPONSES, forget_process_responses
from models.market.tables import TIMEFRAME_MS, Instrument
from tests.helpers import assert_rows_close

MINUTE = 60_000
DAY = 86_400_000
# A fixed, fully closed span: two days ending at a UTC midnight well in the past.
SPAN_END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_START = SPAN_END - 2 * DAY


@pytest.fixture
def market(db: Any) -> dict[str, Instrument]:
    """Synthetic instruments with two days of history for BTC-USD and EUR-USD."""
    provider = SyntheticProvider()
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider=provider.name)
    by_symbol = {i.symbol: i for i in instruments}
    specs = {s.symbol: s for s in SYNTHETIC_INSTRUMENTS}
    for symbol in ("BTC-USD", "EUR-USD"):
        load_history(provider, by_symbol[symbol], specs[symbol], SPAN_START, SPAN_END)
    db.commit()
    return by_symbol


def candles_url(symbol: str, **params: Any) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/market/instruments/{symbol}/candles?{query}"


def expected_rows(symbol: str, timeframe: str, start: int, end: int) -> list[list[float]]:
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == symbol)
    minutes = SyntheticProvider().candles(spec, start, end)
    bars = minutes if timeframe == "1m" else resample(minutes, TIMEFRAME_MS[timeframe])
    return bars.to_rows()


def test_instruments_list_filters_and_pages(client: FlaskClient, market: Any) -> None:
    body = client.get("/api/v1/market/instruments").json
    symbols = [i["symbol"] for i in body["items"]]
    assert symbols == sorted(symbols) and len(symbols) >= 6
    assert {"BTC-USD", "ETH-USD", "EUR-USD"} <= set(symbols)
    btc = next(i for i in body["items"] if i["symbol"] == "BTC-USD")
    assert btc["timeframes"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    fx = client.get("/api/v1/market/instruments?kind=fx").json["items"]
    assert fx and all(i["kind"] == "fx" for i in fx)
    page = client.get("/api/v1/market/instruments?page_size=2&page=2").json
    assert page["total"] == body["total"] and len(page["items"]) == 2
    assert client.get("/api/v1/market/instruments?kind=bonds").status_code == 422


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_candles_match_the_provider_in_every_timeframe(
    client: FlaskClient, market: Any, timeframe: str
) -> None:
    start, end = SPAN_START + DAY, SPAN_END
    response = client.get(
        candles_url("BTC-USD", timeframe=timeframe, start=start, end=end, limit=5000)
    )
    assert response.status_code == 200
    body = response.json
    expected = expected_rows("BTC-USD", timeframe, start, end)
    assert_rows_close(body["rows"], expected)
    assert body["next_cursor"] is None
    assert len(body["rows"]) == (end - start) // TIMEFRAME_MS[timeframe]


def test_cursor_paging_has_no_gaps_or_duplicates(client: FlaskClient, market: Any) -> None:
    seen: list[int] = []
    url = candles_url("EUR-USD", timeframe="5m", start=SPAN_START, end=SPAN_END, limit=97)
    pages = 0
    while url:
        body = client.get(url).json
        seen.extend(int(r[0]) for r in body["rows"])
        pages += 1
        url = (
            candles_url("EUR-USD", timeframe="5m", cursor=body["next_cursor"], limit=97)
            if body["next_cursor"]
            else ""
        )
    step = TIMEFRAME_MS["5m"]
    assert seen == list(range(SPAN_START, SPAN_END, step))
    assert pages == -(-len(seen) // 97)


def test_iso_times_are_accepted(client: FlaskClient, market: Any) -> None:
    body = client.get(
        candles_url(
            "BTC-USD", timeframe="1h", start="2025-12-31T00:00:00Z", end="2025-12-31T03:00:00Z"
        )
    ).json
    assert [int(r[0]) for r in body["rows"]] == [SPAN_END - DAY + h * 3_600_000 for h in range(3)]


def test_closed_ranges_are_cacheable_with_etag(client: FlaskClient, market: Any) -> None:
    url = candles_url("BTC-USD", timeframe="1h", start=SPAN_START, end=SPAN_END)
    first = client.get(url)
    assert "max-age=86400" in first.headers["Cache-Control"]
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_open_range_is_short_lived(client: FlaskClient, market: Any) -> None:
    response = client.get(candles_url("BTC-USD", timeframe="1m"))
    assert response.status_code == 200
    assert "max-age=5" in response.headers["Cache-Control"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"timeframe": "2m"}, "timeframe"),
        ({"start": SPAN_END, "end": SPAN_START}, "start"),
        ({"start": 0, "end": SPAN_END, "timeframe": "1m"}, "end"),
        ({"limit": 5001}, "limit"),
        ({"limit": 0}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"start": "²"}, "start"),  # a digit to str.isdigit, not to int()
        ({"cursor": "!!!"}, None),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_candle_queries_are_422(
    client: FlaskClient, market: Any, params: dict[str, Any], field: str | None
) -> None:
    response = client.get(candles_url("BTC-USD", **params))
    assert response.status_code == 422, response.json
    assert response.json["code"] == 422
    if field:
        assert field in str(response.json["errors"])


def test_unknown_symbol_is_404(client: FlaskClient, market: Any) -> None:
    for path in ("candles", "quote"):
        response = client.get(f"/api/v1/market/instruments/NOPE-USD/{path}")
        assert response.status_code == 404
        assert "NOPE-USD" in response.json["message"]


def test_quote_falls_back_to_postgres_then_uses_the_cache(
    client: FlaskClient, market: Any, redis: Redis
) -> None:
    body = client.get("/api/v1/market/instruments/BTC-USD/quote").json
    day = expected_rows("BTC-USD", "1m", SPAN_END - DAY, SPAN_END)
    assert body["price"] == pytest.approx(day[-1][4])
    assert body["high_24h"] == pytest.approx(max(r[2] for r in day))
    assert body["low_24h"] == pytest.approx(min(r[3] for r in day))
    assert body["volume_24h"] == pytest.approx(sum(r[5] for r in day))
    assert body["change_24h"] == pytest.approx(day[-1][4] - day[0][1])
    assert body["ts"] == SPAN_END
    # The feed's published quote wins over Postgres.
    redis.set("mkt:quote:BTC-USD", b'{"symbol":"BTC-USD","price":1.5}')
    assert client.get("/api/v1/market/instruments/BTC-USD/quote").json["price"] == 1.5


def test_cache_counts_hits_and_misses_and_serves_from_redis(
    client: FlaskClient, market: Any, redis: Redis, db: Any
) -> None:
    url = candles_url("BTC-USD", timeframe="1h", start=SPAN_START, end=SPAN_END)
    first = client.get(url).json
    stats = CandleCache(redis).stats()
    assert stats["candle_misses"] >= 1 and stats.get("candle_hits", 0) == 0
    assert stats["response_lookups"] == 1 and stats["response_misses"] == 1
    assert redis.exists(chunk_key("BTC-USD", "1h", SPAN_START // (3_600_000 * 1000)))
    assert redis.exists(response_key("BTC-USD", "1h", SPAN_START, SPAN_END, 500))
    # Change Postgres behind the cache's back: the cached closed window keeps answering.
    db.execute(__import__("sqlalchemy").text("DELETE FROM candles WHERE timeframe = '1h'"))
    db.commit()
    second = client.get(url).json
    assert second == first
    PROCESS_RESPONSES.sync()  # a hit in memory is counted in Redis by the sync thread
    stats = CandleCache(redis).stats()
    assert stats["response_lookups"] == 2 and stats["response_misses"] == 1
    assert stats["response_local_misses"] == 1  # the second came from this process's memory
    # Another process (no copy in memory) is answered from Redis's copy.
    forget_process_responses()
    assert client.get(url).json == first
    stats = CandleCache(redis).stats()
    assert stats["response_lookups"] == 3 and stats["response_misses"] == 1
    assert stats["response_local_misses"] == 2
    # Another window over the same chunk misses the response cache but hits the chunk.
    third = client.get(
        candles_url("BTC-USD", timeframe="1h", start=SPAN_START, end=SPAN_END - 3_600_000)
    )
    assert third.json["rows"] == first["rows"][:-1]
    assert CandleCache(redis).stats()["candle_hits"] >= 1


def test_a_new_candle_updates_the_cached_chunk(
    client: FlaskClient, market: Any, redis: Redis
) -> None:
    url = candles_url(
        "EUR-USD", timeframe="1m", start=SPAN_END - 10 * MINUTE, end=SPAN_END + 2 * MINUTE
    )
    before = client.get(url).json["rows"]
    assert len(before) == 10
    new_row = [SPAN_END, 1.1, 1.2, 1.0, 1.15, 42.0]
    assert CandleCache(redis).put_closed_candle("EUR-USD", "1m", MINUTE, new_row) is True
    after = client.get(url).json["rows"]
    assert after[:10] == before and after[10] == new_row


class LockCountingRedis:
    """The real Redis client, counting attempts on the chunk fill locks."""

    def __init__(self, redis: Redis, expected: int) -> None:
        self._redis = redis
        self._expected = expected
        self._attempts = 0
        self._count_lock = threading.Lock()
        self.all_tried = threading.Event()

    def set(self, key: str, *args: Any, **kwargs: Any) -> Any:
        result = self._redis.set(key, *args, **kwargs)
        if key.startswith("mkt:lock:"):
            with self._count_lock:
                self._attempts += 1
                if self._attempts == self._expected:
                    self.all_tried.set()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)


def test_stampede_loads_a_cold_chunk_once(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    readers = 8
    calls: list[tuple[int, int]] = []
    rows = [[i * MINUTE, 1.0, 1.0, 1.0, 1.0, 1.0] for i in range(5)]
    counting = LockCountingRedis(redis, expected=readers)
    # Waiters give up on a slow filler after LOCK_WAIT_S; make that far longer than any
    # stall of a loaded machine, so only the lock decides who loads.
    monkeypatch.setattr(market_cache, "LOCK_WAIT_S", 60.0)

    def loader(lo: int, hi: int) -> list[list[float]]:
        calls.append((lo, hi))
        # The filler holds its lock until every reader has tried to take it.
        assert counting.all_tried.wait(60)
        return [r for r in rows if lo <= r[0] < hi]

    results: list[list[list[float]]] = []
    cache = CandleCache(counting)  # type: ignore[arg-type]

    def read() -> None:
        results.append(
            cache.window(
                "X-Y",
                "1m",
                timeframe_ms=MINUTE,
                start=0,
                end=5 * MINUTE,
                limit=10,
                now_ms=10**13,
                loader=loader,
            )
        )

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == readers
    assert all(r == rows for r in results)


def test_a_chunk_read_before_an_import_is_not_stored_after_it(redis: Redis) -> None:
    old = [[m * MINUTE, 1.0, 2.0, 0.5, 1.5, 10.0] for m in range(5)]
    new = [[m * MINUTE, 3.0, 4.0, 2.5, 3.5, 20.0] for m in range(5)]
    cache = CandleCache(redis)
    served: list[list[list[float]]] = []

    def slow_loader(lo: int, hi: int) -> list[list[float]]:
        # The filler read the old rows; an import commits and invalidates before it stores them.
        cache.invalidate("X-Y", "1m", MINUTE, 0, 5 * MINUTE)
        return old

    def window(loader: Any) -> list[list[float]]:
        return cache.window(
            "X-Y",
            "1m",
            timeframe_ms=MINUTE,
            start=0,
            end=5 * MINUTE,
            limit=10,
            now_ms=10**13,
            loader=loader,
        )

    served.append(window(slow_loader))
    assert served[0] == old  # that one request still answers with what it read
    assert redis.get(chunk_key("X-Y", "1m", 0)) is None  # but the old rows were not cached
    served.append(window(lambda lo, hi: new))
    assert served[1] == new
    assert window(lambda lo, hi: old) == new  # now a hit, with the rewritten rows


def test_stored_derived_candles_equal_engine_resampling(market: Any) -> None:
    btc = market["BTC-USD"]
    for timeframe in ("5m", "15m", "1h", "4h", "1d"):
        stored = read_candles(btc.id, timeframe, SPAN_START, SPAN_END, 10_000)
        assert_rows_close(stored, expected_rows("BTC-USD", timeframe, SPAN_START, SPAN_END))


_: Callable[..., Any] = Candles.from_rows  # the row format round-trips through the engine


def test_without_start_the_newest_rows_before_end_are_served(
    client: FlaskClient, market: Any
) -> None:
    body = client.get(candles_url("BTC-USD", timeframe="15m", end=SPAN_END, limit=10)).json
    step = TIMEFRAME_MS["15m"]
    assert [int(r[0]) for r in body["rows"]] == list(range(SPAN_END - 10 * step, SPAN_END, step))
    assert body["next_cursor"] is None


def test_operators_see_cache_and_stream_stats(
    client: FlaskClient,
    market: Any,
    redis: Redis,
    auth_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    url = candles_url("BTC-USD", timeframe="1h", start=SPAN_START, end=SPAN_END)
    client.get(url)
    client.get(url)
    redis.xadd("mkt:stream:BTC-USD", {"type": "quote", "data": "{}"}, id="5-1")
    assert client.get("/api/v1/market/stats", headers=auth_headers).status_code == 403
    body = client.get("/api/v1/market/stats", headers=admin_headers).json
    assert body["closed_window_requests"] == 2 and body["closed_window_hits"] == 1
    assert body["closed_window_memory_hits"] == 1
    assert body["hit_ratio"] == 0.5
    assert body["chunk_misses"] == 1 and body["chunk_hits"] == 0
    assert body["streams"]["BTC-USD"] == {"length": 1, "last_id": "5-1"}
    assert body["streams"]["ETH-USD"] == {"length": 0, "last_id": None}


def test_a_window_the_feed_has_not_filled_is_served_but_not_kept(
    client: FlaskClient, market: Any, redis: Redis
) -> None:
    # BTC-USD's history ends at SPAN_END: an hour-long window past it is closed by the clock
    # but incomplete, so its response must not be cached for a day.
    url = candles_url(
        "BTC-USD", timeframe="1h", start=SPAN_END - 3_600_000, end=SPAN_END + 3_600_000
    )
    assert len(client.get(url).json["rows"]) == 1
    assert not redis.exists(
        response_key("BTC-USD", "1h", SPAN_END - 3_600_000, SPAN_END + 3_600_000, 500)
    )
    complete = candles_url("BTC-USD", timeframe="1h", start=SPAN_END - 3_600_000, end=SPAN_END)
    client.get(complete)
    assert redis.exists(response_key("BTC-USD", "1h", SPAN_END - 3_600_000, SPAN_END, 500))
