"""The cached preview: served from Redis alone, moved on by every swap, gzip, Redis down."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import BlockingConnectionPool, Redis
from sqlalchemy import event
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from models.leaderboards.preview_cache import (
    PREVIEW_KEY,
    PREVIEW_TTL_S,
    Preview,
    set_preview_redis,
    store_preview,
)
from tests import leaderboard_world as world
from workers.main import build_worker
from workers.queues import DEFAULT

PREVIEW = "/api/v1/leaderboards/preview"
GZIP = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture
def ranked(db: Any) -> list[Any]:
    """Twelve ranked bots of one owner, committed."""
    world.instruments()
    user = world.owner()
    bots = [world.ranked(world.bot(user), sharpe=float(i)) for i in range(12)]
    db.commit()
    return bots


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while the test runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    yield sent
    event.remove(Engine, "before_cursor_execute", record)


@pytest.fixture
def dead_redis(app: Flask) -> Iterator[Redis]:
    """The app's cache client (and the swap announcements) pointed at a closed port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Built as create_app builds its client, so a refused connection fails at once.
    pool = BlockingConnectionPool.from_url(
        f"redis://127.0.0.1:{port}/0", timeout=1, socket_connect_timeout=1, socket_timeout=1
    )
    dead = Redis(connection_pool=pool)
    live = app.extensions["botyard.redis"]
    app.extensions["botyard.redis"] = dead
    set_preview_redis(dead)
    yield dead
    app.extensions["botyard.redis"] = live
    set_preview_redis(live)


def generation_of(client: FlaskClient, **headers: str) -> Any:
    """The generation the preview shows, in whichever encoding it came."""
    response = client.get(PREVIEW, headers=headers)
    assert response.status_code == 200
    data = response.data
    if response.headers.get("Content-Encoding") == "gzip":
        data = gzip.decompress(data)
    return orjson.loads(data)["generation_id"]


def test_a_hit_sends_no_sql(
    client: FlaskClient, ranked: list[Any], redis: Redis, statements: list[str]
) -> None:
    done = world.run_recompute()
    filled = client.get(PREVIEW)
    assert filled.json["generation_id"] == done.generation_id
    statements.clear()
    for headers in ({}, GZIP):
        hit = client.get(PREVIEW, headers=headers)
        assert hit.status_code == 200
    assert statements == []
    assert client.get(PREVIEW).data == filled.data


def test_a_recompute_called_directly_moves_the_preview_on_at_once(
    client: FlaskClient, ranked: list[Any], redis: Redis
) -> None:
    assert generation_of(client) is None  # no generation yet: cached as such
    first = world.run_recompute()
    assert redis.hgetall(PREVIEW_KEY) == {b"generation": str(first.generation_id).encode()}
    assert generation_of(client) == first.generation_id
    assert generation_of(client, **GZIP) == first.generation_id
    second = world.run_recompute()
    assert generation_of(client) == second.generation_id
    assert generation_of(client, **GZIP) == second.generation_id


def test_a_recompute_by_the_worker_moves_the_preview_on(
    app: Flask,
    client: FlaskClient,
    ranked: list[Any],
    admin_headers: dict[str, str],
    redis: Redis,
) -> None:
    first = world.run_recompute()
    assert generation_of(client) == first.generation_id
    job = client.post("/api/v1/leaderboards/recompute", headers=admin_headers).json
    # A worker process builds no web app: the worker itself must bind the announcements.
    previous = set_preview_redis(None)
    try:
        assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    finally:
        set_preview_redis(previous)
    made = client.get(job["location"], headers=admin_headers).json["generation_id"]
    assert made > first.generation_id
    assert generation_of(client) == made


def test_a_fill_read_before_a_swap_never_overwrites_it(
    client: FlaskClient, ranked: list[Any], redis: Redis
) -> None:
    first = world.run_recompute()
    # A request read generation `first` and built its body; `second` is swapped in before
    # the request stores it.
    stale = Preview.of(first.generation_id, client.get(PREVIEW).data)
    read_at = time.monotonic()
    second = world.run_recompute()
    assert store_preview(redis, stale, read_at) is False
    assert generation_of(client) == second.generation_id
    # Once the newer one is cached, the older one still cannot replace it.
    assert store_preview(redis, stale, time.monotonic()) is False
    assert generation_of(client) == second.generation_id


def test_a_fill_older_than_the_cache_lifetime_is_not_stored(
    client: FlaskClient, ranked: list[Any], redis: Redis
) -> None:
    # Such a read may predate an announcement that has expired since: nothing to compare with.
    done = world.run_recompute()
    body = client.get(PREVIEW).data
    redis.delete(PREVIEW_KEY)
    long_ago = time.monotonic() - PREVIEW_TTL_S
    assert store_preview(redis, Preview.of(done.generation_id, body), long_ago) is False
    assert redis.exists(PREVIEW_KEY) == 0


def test_without_the_cached_hash_the_preview_comes_from_postgres(
    client: FlaskClient, ranked: list[Any], redis: Redis
) -> None:
    done = world.run_recompute()
    redis.delete(PREVIEW_KEY)  # expired, evicted or flushed
    assert generation_of(client) == done.generation_id
    assert redis.hget(PREVIEW_KEY, "generation") == str(done.generation_id).encode()


def test_gzip_is_its_own_representation_with_its_own_etag(
    client: FlaskClient, ranked: list[Any], redis: Redis
) -> None:
    world.run_recompute()
    plain = client.get(PREVIEW)
    packed = client.get(PREVIEW, headers=GZIP)
    assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert len(packed.data) < len(plain.data) // 4
    assert "Content-Encoding" not in plain.headers
    for response in (plain, packed):
        assert "Accept-Encoding" in response.headers["Vary"]
    etag = packed.headers["ETag"]
    assert etag.startswith('"') and etag != plain.headers["ETag"]
    again = client.get(PREVIEW, headers={**GZIP, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and "Accept-Encoding" in again.headers["Vary"]
    # The gzip ETag names the gzip bytes: a client that takes no gzip gets the JSON.
    other = client.get(PREVIEW, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.data == plain.data
    refused = client.get(PREVIEW, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data
    plain_again = client.get(PREVIEW, headers={"If-None-Match": plain.headers["ETag"]})
    assert plain_again.status_code == 304


def test_with_redis_down_the_preview_is_built_from_postgres(
    client: FlaskClient, ranked: list[Any], redis: Redis, dead_redis: Redis
) -> None:
    first = world.run_recompute()  # its announcement fails: logged, the swap stands
    assert first.activated is True
    with capture_logs() as logs:
        plain = client.get(PREVIEW)
        packed = client.get(PREVIEW, headers=GZIP)
    assert plain.status_code == 200 and plain.json["generation_id"] == first.generation_id
    assert gzip.decompress(packed.data) == plain.data
    events = [entry["event"] for entry in logs]
    assert events.count("leaderboard_preview_cache_unavailable") == 4  # a read, a store, twice
    second = world.run_recompute()
    assert generation_of(client) == second.generation_id


def _preview_bot_ids(client: FlaskClient) -> set[str]:
    body = client.get(PREVIEW).json
    return {entry["bot"]["id"] for board in body["boards"] for entry in board["entries"]}


def test_a_bot_a_moderator_hides_leaves_the_cached_preview_at_once(
    client: FlaskClient, ranked: list[Any], admin_headers: dict[str, str], redis: Redis
) -> None:
    world.run_recompute()
    best = str(ranked[-1].id)  # the highest Sharpe: on every board's top 10
    assert best in _preview_bot_ids(client)
    assert redis.hget(PREVIEW_KEY, "body") is not None  # cached
    hidden = client.post(
        f"/api/v1/moderation/bots/{best}/hide", json={"reason": "scam"}, headers=admin_headers
    )
    assert hidden.status_code == 200, hidden.json
    assert redis.hget(PREVIEW_KEY, "body") is None
    assert best not in _preview_bot_ids(client)
    # The rebuilt body is cached again, for the same generation.
    assert redis.hget(PREVIEW_KEY, "body") is not None
