"""Closed candle windows kept in each web process's memory, and the candle query's fast path."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl

import marshmallow as ma
import pytest
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from werkzeug.datastructures import MultiDict

from api.market.schemas import CandlesQuery
from models.market import responses as market_responses
from models.market.cache import CandleCache, generation_key, response_key
from models.market.responses import (
    PROCESS_RESPONSES,
    BytesLRU,
    CachedResponse,
    forget_process_responses,
)
from tests.api.test_market import SPAN_END, SPAN_START, candles_url

pytest_plugins = ["tests.api.test_market"]  # the `market` fixture

HOUR = 3_600_000
URL = candles_url("BTC-USD", timeframe="1h", start=SPAN_START, end=SPAN_END)
KEY = response_key("BTC-USD", "1h", SPAN_START, SPAN_END, 500)


def volumes(body: Any) -> list[float]:
    return [row[5] for row in body["rows"]]


def entry(size: int, generation: str = "g") -> CachedResponse:
    body = b"x" * (size - market_responses.ENTRY_OVERHEAD)
    return CachedResponse(generation, time.time() + 60, "etag", body)


def test_the_memory_is_bounded_by_bytes_and_drops_the_least_recently_used() -> None:
    lru = BytesLRU(max_bytes=4000)
    for name in "abcd":
        lru.put(name, entry(1000))
    assert lru.size == 4000 and len(lru) == 4
    assert lru.get("a") is not None  # now the most recently used
    lru.put("e", entry(1000))
    assert lru.get("b") is None  # the least recently used went
    assert [k for k in "acde" if lru.get(k)] == list("acde") and lru.size == 4000
    lru.put("a", entry(500))  # replacing an entry charges only the new size
    assert lru.size == 3500
    lru.put("huge", entry(1001))  # over a quarter of the bound: not kept
    assert lru.get("huge") is None and lru.size == 3500
    lru.put("f", entry(1000))  # fits again only after evicting the oldest (c)
    assert lru.get("c") is None and lru.size == 3500


def test_a_hit_in_memory_needs_no_copy_in_redis(
    client: FlaskClient, market: Any, redis: Redis
) -> None:
    first = client.get(URL)
    assert first.status_code == 200
    redis.delete(KEY)  # only this process's copy is left
    again = client.get(URL, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    second = client.get(URL)
    assert second.data == first.data and second.headers["ETag"] == first.headers["ETag"]
    assert "max-age=86400" in second.headers["Cache-Control"]
    assert second.headers["X-RateLimit-Limit"]  # still rate limited
    PROCESS_RESPONSES.sync()
    stats = CandleCache(redis).stats()
    assert stats["response_lookups"] == 3
    assert stats["response_misses"] == 1 and stats["response_local_misses"] == 1


def test_copies_expire_a_day_after_they_were_built_and_odd_values_are_misses(
    client: FlaskClient, market: Any, redis: Redis
) -> None:
    first = client.get(URL)
    kept = PROCESS_RESPONSES.copies.get(KEY)
    assert kept is not None and kept.expires_at == pytest.approx(time.time() + 86_400, abs=5)
    assert redis.ttl(KEY) > 86_000
    stale = CachedResponse(kept.generation, time.time() - 1, "old", b"{}")
    PROCESS_RESPONSES.copies.put(KEY, stale)
    redis.set(KEY, b"etag\n{}")  # the layout before generations: not a copy
    again = client.get(URL)
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]
    assert CandleCache(redis).stats()["response_misses"] == 2


def test_a_rewrite_elsewhere_reaches_this_process_at_its_next_sync(
    client: FlaskClient, market: Any, redis: Redis, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = client.get(URL).json
    # Another process imports history: new rows in Postgres, the symbol's generation and
    # its Redis copies gone. Until this process's next sync (every SYNC_S, and at most
    # GENERATION_TRUST_S after its last read) it may still answer from memory.
    monkeypatch.setattr(market_responses, "rewritten_here_at", lambda _symbol: 0.0)
    db.execute(text("UPDATE candles SET volume = volume + 1 WHERE timeframe = '1h'"))
    db.commit()
    CandleCache(redis).invalidate("BTC-USD", "1h", HOUR, SPAN_START, SPAN_END)
    PROCESS_RESPONSES.sync()  # what the sync thread does every SYNC_S
    after = client.get(URL).json
    assert volumes(after) == [v + 1 for v in volumes(before)]
    assert redis.get(generation_key("BTC-USD")) is not None


def test_an_expired_trust_asks_redis_before_answering_from_memory(
    client: FlaskClient, market: Any, redis: Redis, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(market_responses, "GENERATION_TRUST_S", 0.0)
    monkeypatch.setattr(market_responses, "rewritten_here_at", lambda _symbol: 0.0)
    before = client.get(URL).json
    assert client.get(URL).json == before  # same generation: the memory copy answers
    db.execute(text("UPDATE candles SET volume = volume + 1 WHERE timeframe = '1h'"))
    db.commit()
    # A rewrite, as another process makes it (this one hears of it only through Redis).
    CandleCache(redis).invalidate("BTC-USD", "1h", HOUR, SPAN_START, SPAN_END)
    after = client.get(URL).json
    assert volumes(after) == [v + 1 for v in volumes(before)]


def test_a_rewrite_in_this_process_is_seen_at_once(
    client: FlaskClient, market: Any, redis: Redis, db: Any
) -> None:
    before = client.get(URL).json
    db.execute(text("UPDATE candles SET volume = volume + 1 WHERE timeframe = '1h'"))
    db.commit()
    CandleCache(redis).invalidate("BTC-USD", "1h", HOUR, SPAN_START, SPAN_END)
    after = client.get(URL).json
    assert volumes(after) == [v + 1 for v in volumes(before)]


def test_a_flushed_redis_starts_a_new_generation(
    client: FlaskClient, market: Any, redis: Redis, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(market_responses, "GENERATION_TRUST_S", 0.0)
    before = client.get(URL).json
    db.execute(text("UPDATE candles SET volume = volume + 1 WHERE timeframe = '1h'"))
    db.commit()
    redis.flushdb()
    after = client.get(URL).json
    assert after != before


def test_without_redis_nothing_is_served_from_or_kept_in_memory(
    client: FlaskClient, market: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get(URL)
    forget_process_responses()
    monkeypatch.setattr(market_responses, "GENERATION_TRUST_S", 0.0)

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise RedisConnectionError("down")

    monkeypatch.setattr(Redis, "pipeline", down)
    monkeypatch.setattr(Redis, "set", down)
    assert client.get(URL).status_code == 200  # from the chunks / Postgres
    assert len(PROCESS_RESPONSES.copies) == 0


@pytest.mark.parametrize(
    "query",
    [
        "",
        "timeframe=1h",
        f"timeframe=5m&start={SPAN_START}&end={SPAN_END}&limit=1000",
        f"start={SPAN_START}",
        f"end={SPAN_END}&limit=5000",
        f"start={SPAN_START}&end={SPAN_START + 100_000 * 60_000}",  # the largest range
        f"start=+{SPAN_START}",
        f"start= {SPAN_START} ",
        "limit=007",
        # Each of these is refused by the schema, with its message: no fast path.
        "timeframe=2m",
        f"start={SPAN_END}&end={SPAN_START}",
        f"start={SPAN_START}&end={SPAN_START + 100_001 * 60_000}",
        "limit=0",
        "limit=5001",
        "limit=1.5",
        "limit=",
        "start=-1",
        "start=4102444800001",
        "start=yesterday",
        "colour=red",
        "limit=5&limit=6",
        "cursor=MTox",
    ],
)
def test_the_fast_path_agrees_with_the_schema(query: str) -> None:
    args = MultiDict(parse_qsl(query, keep_blank_values=True))
    schema = CandlesQuery()
    try:
        loaded = schema.load(args.to_dict())
    except ma.ValidationError:
        loaded = None
    fast = schema.fast_load(args)
    if fast is not None:
        assert fast == loaded
    elif loaded is not None:  # valid, yet not fast: only a cursor or a repeated parameter
        assert "cursor" in args or any(len(v) > 1 for v in args.lists())
    plain = loaded is not None and "cursor" not in args
    assert (fast is not None) == (plain and all(len(v) == 1 for _, v in args.lists()))
