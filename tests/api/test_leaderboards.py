"""Leaderboard endpoints: full board, preview (cache, ETag), recompute, a bot's status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from models.leaderboards.generations import prune_generations
from tests import leaderboard_world as world
from tests.helpers import bearer
from workers.main import build_worker
from workers.queues import DEFAULT


@pytest.fixture
def market(db: Any) -> None:
    world.instruments()
    db.commit()


@pytest.fixture
def me(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> Any:
    user = make_user()
    user.headers = bearer(login(user.username)["access_token"])
    return user


def get_board(client: FlaskClient, headers: dict[str, str], **query: Any) -> Any:
    response = client.get("/api/v1/leaderboards", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def test_before_any_generation_the_board_and_preview_are_empty(
    client: FlaskClient, me: Any, redis: Redis
) -> None:
    body = get_board(client, me.headers)
    assert body["entries"] == [] and body["generated_at"] is None and body["mine"] is None
    assert body["period"] == "30d" and body["metric"] == "sharpe"
    preview = client.get("/api/v1/leaderboards/preview")
    assert preview.status_code == 200
    assert preview.json["generated_at"] is None
    assert all(board["entries"] == [] for board in preview.json["boards"])


def test_the_full_board_needs_a_token_and_shows_entries(
    client: FlaskClient, db: Any, market: None, me: Any
) -> None:
    assert client.get("/api/v1/leaderboards").status_code == 401
    other = world.owner()
    mine = world.ranked(world.bot(me), sharpe=1.0)
    theirs = world.ranked(world.bot(other), sharpe=2.0, days=40, trades=12)
    db.commit()
    done = world.run_recompute()
    body = get_board(client, me.headers, period="all", metric="sharpe")
    assert body["generation_id"] == done.generation_id and body["generated_at"]
    assert body["formula_version"] == "1"
    first, second = body["entries"]
    assert first["rank"] == 1 and first["overall_rank"] == 1
    assert first["previous_rank"] is None and first["rank_change"] is None
    assert first["bot"] == {
        "id": str(theirs.id),
        "name": theirs.name,
        "symbol": "BTC-USD",
        "timeframe": "1h",
        "strategy": "sma_crossover",
    }
    assert first["owner"] == {
        "username": other.username,
        "display_name": None,
        "profile_url": f"/api/v1/users/{other.username}",
    }
    assert first["components"]["sharpe"] == 2.0 and first["components"]["days_tracked"] == 40
    assert first["components"]["trades"] == 12 and first["score"] == 2.0
    assert "params" not in str(first) and "@" not in str(first)  # no parameters, no email
    assert second["bot"]["id"] == str(mine.id)
    assert body["mine"]["bot"]["id"] == str(mine.id) and body["mine"]["rank"] == 2
    # The rank change after the next generation.
    world.ranked(mine, sharpe=3.0)
    db.commit()
    world.run_recompute()
    top = get_board(client, me.headers, period="all")["entries"][0]
    assert top["bot"]["id"] == str(mine.id)
    assert (top["previous_rank"], top["rank_change"]) == (2, 1)


def test_bad_queries_are_4xx_not_500(client: FlaskClient, me: Any) -> None:
    for query in (
        {"period": "1y"},
        {"metric": "sortino"},
        {"limit": 0},
        {"limit": 101},
        {"cursor": "not-a-cursor"},
        {"cursor": "eyJnIjoiYSJ9"},
        {"unknown": "x"},
        {"instrument": "x" * 40},
    ):
        response = client.get("/api/v1/leaderboards", query_string=query, headers=me.headers)
        assert response.status_code == 422, (query, response.json)


def test_pages_walk_every_eligible_bot_once_in_order(
    client: FlaskClient, db: Any, market: None, me: Any
) -> None:
    owners = [world.owner() for _ in range(3)]
    bots = []
    for i in range(57):
        # Some ties on purpose: the order must still be total and stable.
        bots.append(world.ranked(world.bot(owners[i % 3]), sharpe=float(i // 2)))
    left_out = world.ranked(world.bot(owners[0]), days=1)
    db.commit()
    done = world.run_recompute()
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"period": "30d", "metric": "sharpe", "limit": 10}
        if cursor:
            query["cursor"] = cursor
        body = get_board(client, me.headers, **query)
        assert body["generation_id"] == done.generation_id
        seen.extend(body["entries"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 6
    assert [entry["rank"] for entry in seen] == list(range(1, 58))
    ids = [entry["bot"]["id"] for entry in seen]
    assert len(set(ids)) == 57 and str(left_out.id) not in ids
    scores = [entry["score"] for entry in seen]
    assert scores == sorted(scores, reverse=True)


def test_a_cursor_stays_on_its_generation_until_that_one_is_deleted(
    client: FlaskClient, db: Any, market: None, me: Any
) -> None:
    user = world.owner()
    bots = [world.ranked(world.bot(user), sharpe=float(i)) for i in range(5)]
    db.commit()
    first = world.run_recompute()
    page = get_board(client, me.headers, limit=2)
    world.ranked(bots[0], sharpe=100.0)  # would be first in the next generation
    db.commit()
    world.run_recompute()
    rest = get_board(client, me.headers, limit=10, cursor=page["next_cursor"])
    assert rest["generation_id"] == first.generation_id
    assert [e["rank"] for e in rest["entries"]] == [3, 4, 5]
    assert [e["bot"]["id"] for e in page["entries"] + rest["entries"]] == [
        str(b.id) for b in reversed(bots)
    ]
    world.run_recompute()
    world.run_recompute()  # keep=3: the first generation is gone now
    prune_generations(3)
    gone = client.get(
        "/api/v1/leaderboards",
        query_string={"cursor": page["next_cursor"]},
        headers=me.headers,
    )
    assert gone.status_code == 410 and "start again" in gone.json["message"]


def test_filters_rank_within_the_instrument_or_strategy_and_combine(
    client: FlaskClient, db: Any, market: None, me: Any
) -> None:
    user = world.owner()
    specs = [
        ("BTC-USD", "sma_crossover", 5.0),
        ("ETH-USD", "sma_crossover", 4.0),
        ("BTC-USD", "ema_crossover", 3.0),
        ("BTC-USD", "sma_crossover", 1.0),
    ]
    bots = [world.ranked(world.bot(user, symbol=s, template=t), sharpe=v) for s, t, v in specs]
    mine = world.ranked(world.bot(me, symbol="BTC-USD", template="ema_crossover"), sharpe=2.0)
    db.commit()
    world.run_recompute()

    def ranks(**query: Any) -> list[tuple[str, int, int]]:
        body = get_board(client, me.headers, **query)
        return [(e["bot"]["id"], e["rank"], e["overall_rank"]) for e in body["entries"]]

    assert ranks(instrument="BTC-USD") == [
        (str(bots[0].id), 1, 1),
        (str(bots[2].id), 2, 3),
        (str(mine.id), 3, 4),
        (str(bots[3].id), 4, 5),
    ]
    assert ranks(strategy="ema_crossover") == [(str(bots[2].id), 1, 3), (str(mine.id), 2, 4)]
    both = get_board(client, me.headers, instrument="BTC-USD", strategy="sma_crossover", limit=1)
    assert [(e["rank"], e["overall_rank"]) for e in both["entries"]] == [(1, 1)]
    rest = get_board(
        client,
        me.headers,
        instrument="BTC-USD",
        strategy="sma_crossover",
        cursor=both["next_cursor"],
    )
    assert [(e["rank"], e["overall_rank"]) for e in rest["entries"]] == [(2, 5)]
    filtered_mine = get_board(client, me.headers, strategy="ema_crossover")["mine"]
    assert filtered_mine["rank"] == 2 and filtered_mine["overall_rank"] == 4
    assert get_board(client, me.headers, instrument="SOL-USD")["entries"] == []


def test_private_unlisted_and_hidden_bots_never_appear(
    client: FlaskClient, db: Any, market: None, me: Any, redis: Redis
) -> None:
    user = world.owner()
    shown = world.ranked(world.bot(user), sharpe=1.0)
    private = world.ranked(world.bot(user, visibility="private"), sharpe=9.0)
    unlisted = world.ranked(world.bot(user, visibility="unlisted"), sharpe=8.0)
    later_private = world.ranked(world.bot(user), sharpe=7.0)
    later_hidden = world.ranked(world.bot(user), sharpe=6.0)
    db.commit()
    world.run_recompute()
    # After the generation was built: one bot goes private, one is hidden by moderation.
    later_private.visibility = "private"
    later_hidden.hidden_at = world.NOW
    db.commit()
    banned = {str(b.id) for b in (private, unlisted, later_private, later_hidden)}
    for period in ("7d", "all"):
        for metric in ("return", "sharpe"):
            body = get_board(client, me.headers, period=period, metric=metric)
            assert {e["bot"]["id"] for e in body["entries"]} == {str(shown.id)}
    preview = client.get("/api/v1/leaderboards/preview").json
    on_preview = {e["bot"]["id"] for b in preview["boards"] for e in b["entries"]}
    assert on_preview == {str(shown.id)} and not on_preview & banned


def test_the_preview_is_public_cached_per_generation_and_conditional(
    client: FlaskClient, db: Any, market: None, redis: Redis
) -> None:
    user = world.owner()
    bots = [world.ranked(world.bot(user), sharpe=float(i)) for i in range(12)]
    db.commit()
    first = world.run_recompute()
    response = client.get("/api/v1/leaderboards/preview")
    assert response.status_code == 200
    body = response.json
    assert body["generation_id"] == first.generation_id and body["generated_at"]
    assert len(body["boards"]) == 16
    sharpe_30d = next(b for b in body["boards"] if (b["period"], b["metric"]) == ("30d", "sharpe"))
    assert [e["bot"]["id"] for e in sharpe_30d["entries"]] == [
        str(b.id) for b in reversed(bots[2:])
    ]
    etag = response.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get("/api/v1/leaderboards/preview", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    # Served from the cache: a change to the data does not show until a new generation.
    world.ranked(bots[0], sharpe=50.0)
    db.commit()
    cached = client.get("/api/v1/leaderboards/preview")
    assert cached.headers["ETag"] == etag and cached.data == response.data
    second = world.run_recompute()
    fresh = client.get("/api/v1/leaderboards/preview", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert fresh.json["generation_id"] == second.generation_id
    top = next(b for b in fresh.json["boards"] if (b["period"], b["metric"]) == ("30d", "sharpe"))
    assert top["entries"][0]["bot"]["id"] == str(bots[0].id)
    assert top["entries"][0]["previous_rank"] == 12 and top["entries"][0]["rank_change"] == 11


def test_the_preview_has_an_anonymous_rate_limit(
    app: Flask, client: FlaskClient, db: Any, redis: Redis
) -> None:
    settings = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = settings.replace(rate_limit_leaderboard_preview="2/minute")
    try:
        codes = [client.get("/api/v1/leaderboards/preview").status_code for _ in range(3)]
    finally:
        app.extensions["botyard.settings"] = settings
    assert codes == [200, 200, 429]


def test_recompute_is_admin_only_queued_once_and_run_as_a_worker_would(
    app: Flask,
    client: FlaskClient,
    db: Any,
    market: None,
    me: Any,
    admin_headers: dict[str, str],
    redis: Redis,
) -> None:
    assert client.post("/api/v1/leaderboards/recompute", headers=me.headers).status_code == 403
    assert client.post("/api/v1/leaderboards/recompute").status_code == 401
    world.ranked(world.bot(me), sharpe=1.0)
    db.commit()
    response = client.post("/api/v1/leaderboards/recompute", headers=admin_headers)
    assert response.status_code == 202
    job = response.json
    assert job["status"] == "queued" and job["generation_id"] is None
    assert response.headers["Location"].endswith(job["location"])
    # Asked again while it waits: the same job.
    again = client.post("/api/v1/leaderboards/recompute", headers=admin_headers)
    assert again.status_code == 202 and again.json["job_id"] == job["job_id"]
    assert client.get(job["location"], headers=me.headers).status_code == 403
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    polled = client.get(job["location"], headers=admin_headers)
    assert polled.status_code == 200 and polled.json["status"] == "finished"
    assert polled.json["activated"] is True
    body = get_board(client, me.headers)
    assert body["generation_id"] == polled.json["generation_id"]
    assert body["entries"][0]["bot"]["name"].startswith("bot-")
    # Finished: a new request queues a new job.
    later = client.post("/api/v1/leaderboards/recompute", headers=admin_headers)
    assert later.json["job_id"] != job["job_id"]
    missing = client.get(
        "/api/v1/leaderboards/recompute/leaderboards-recompute-x", headers=admin_headers
    )
    assert missing.status_code == 404


def test_leaderboard_status_says_where_my_bot_is_or_why_not(
    client: FlaskClient, db: Any, market: None, me: Any, stranger: dict[str, str]
) -> None:
    config = world.strategy(3)
    placed = world.ranked(world.bot(me, config=config), days=30, sharpe=1.0)
    copy = world.ranked(world.bot(me, config=config), days=20)
    short = world.ranked(world.bot(me), days=3, trades=2)
    private = world.ranked(world.bot(me, visibility="private"))
    db.commit()

    def status(bot: Any, headers: dict[str, str] | None = None) -> Any:
        return client.get(
            f"/api/v1/bots/{bot.id}/leaderboard-status", headers=headers or me.headers
        )

    before = status(placed).json
    assert before["generation_id"] is None and before["ranked"] is False
    world.run_recompute()
    body = status(placed).json
    assert body["ranked"] is True and body["reasons"] == [] and len(body["placings"]) == 16
    assert {"period": "30d", "metric": "sharpe", "rank": 1}.items() <= body["placings"][5].items()
    dup = status(copy).json
    assert dup["ranked"] is False and dup["reasons"] == ["duplicate"]
    assert dup["detail"]["duplicate_of"] == str(placed.id)
    few = status(short).json
    assert few["reasons"] == ["too_few_days", "too_few_trades"]
    assert few["detail"] == {
        "days_tracked": 3.0,
        "min_days": 7,
        "trades": 2,
        "min_trades": 5,
        "duplicate_of": None,
    }
    assert status(private).json["reasons"] == ["not_public"]
    assert status(placed, stranger).status_code == 404
