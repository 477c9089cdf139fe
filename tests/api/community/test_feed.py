"""The feed: exactly the followed users' public activity, checked at read time, paged once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from models.bots.bots import create_bot
from models.community.blocks import block
from models.community.follows import follow
from models.community.tables import Comment
from models.leaderboards.partitions import partition_name
from models.leaderboards.tables import LeaderboardEntry, LeaderboardGeneration
from models.people.activities import record
from models.people.tables import AccountSettings
from tests.api.conftest import BOT

FEED = "/api/v1/feed"


def bot_of(db: Any, owner: Any, name: str, visibility: str = "public") -> Any:
    bot = create_bot(owner.id, {**BOT, "name": name, "visibility": visibility})
    db.commit()
    return bot


def act(db: Any, verb: str, actor: Any, obj: Any, at: datetime | None = None, **data: Any) -> int:
    """Record one activity the way track() writes it; its id."""
    row = record(
        verb,
        actor.id,
        object_type="comment" if verb.startswith("comment.") else "bot",
        object_id=obj.id,
        data={key: str(value) for key, value in data.items()},
        created_at=at,
    )
    db.commit()
    return row.id


def comment_on(db: Any, bot: Any, author: Any, body: str) -> Comment:
    comment = Comment(id=uuid.uuid4(), bot_id=bot.id, author_id=author.id, body=body)
    db.add(comment)
    db.commit()
    return comment


def read_all(client: FlaskClient, reader: Any, limit: int = 25) -> list[dict[str, Any]]:
    """Every feed item, page after page."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(FEED, query_string=query, headers=reader.headers)
        assert response.status_code == 200, response.json
        items.extend(response.json["items"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the feed never ended")


def summary(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["kind"],
        item["actor"]["username"],
        item["bot"]["name"],
        (item["fork"] or {}).get("name"),
        (item["comment"] or {}).get("excerpt"),
    )


@pytest.fixture
def world(db: Any, instruments: None, person: Callable[..., Any]) -> Any:
    """A reader following alice and bob (not carol), and their hand-made activity."""
    me, alice, bob, carol = person(), person(), person(), person()
    for followee in (alice, bob):
        follow(me.id, followee.id)
    db.commit()
    w = type("World", (), {})()
    w.me, w.alice, w.bob, w.carol = me, alice, bob, carol
    w.a1 = bot_of(db, alice, "alpha")
    w.c1 = bot_of(db, carol, "carols")
    w.fork = bot_of(db, bob, "alpha copy", visibility="private")
    w.b2 = bot_of(db, bob, "beta")
    w.secret = bot_of(db, alice, "secret", visibility="private")
    w.comment = comment_on(db, w.c1, alice, "Nice bot! " + "x" * 300)
    act(db, "bot.published", alice, w.a1)
    act(db, "bot.published", carol, w.c1)  # not followed
    act(db, "bot.forked", bob, w.fork, source_bot_id=w.a1.id)
    act(db, "comment.created", alice, w.comment, bot_id=w.c1.id)
    act(db, "bot.updated", alice, w.a1)  # not a feed verb
    act(db, "bot.published", bob, w.b2)
    act(db, "bot.published", alice, w.secret)  # made private again since
    return w


def test_the_feed_has_exactly_the_followed_users_public_items_newest_first(
    client: FlaskClient, world: Any
) -> None:
    w = world
    items = read_all(client, w.me)
    assert [summary(item) for item in items] == [
        ("bot.published", w.bob.username, "beta", None, None),
        ("comment.created", w.alice.username, "carols", None, "Nice bot! " + "x" * 190),
        ("bot.forked", w.bob.username, "alpha", None, None),
        ("bot.published", w.alice.username, "alpha", None, None),
    ]
    first = items[0]
    assert first["bot"] == {"id": str(w.b2.id), "name": "beta", "symbol": "BTC-USD"}
    assert first["actor"]["profile_url"] == f"/api/v1/users/{w.bob.username}"
    assert first["placing"] is None and first["comment"] is None
    assert items[1]["comment"]["id"] == str(w.comment.id)
    # Only the reader's follows count: carol's own feed is empty.
    assert read_all(client, w.carol) == []


def test_a_public_fork_is_shown_with_its_source(client: FlaskClient, db: Any, world: Any) -> None:
    world.fork.visibility = "public"
    db.commit()
    forked = [item for item in read_all(client, world.me) if item["kind"] == "bot.forked"]
    assert [(item["bot"]["name"], item["fork"]["name"]) for item in forked] == [
        ("alpha", "alpha copy")
    ]


def test_paging_returns_each_item_once_in_order(client: FlaskClient, world: Any) -> None:
    whole = read_all(client, world.me)
    for limit in (1, 2, 3):
        assert read_all(client, world.me, limit=limit) == whole


def test_items_leave_when_what_they_show_is_no_longer_visible(
    client: FlaskClient, db: Any, world: Any
) -> None:
    w = world
    w.a1.visibility = "unlisted"  # its publication and bob's fork of it go
    w.b2.hidden_at = datetime.now(UTC)
    db.commit()
    assert [summary(item)[0] for item in read_all(client, w.me)] == ["comment.created"]
    w.comment.hidden_at = datetime.now(UTC)
    db.commit()
    assert read_all(client, w.me) == []
    w.comment.hidden_at = None
    w.comment.deleted_at = datetime.now(UTC)
    w.a1.visibility = "public"
    db.commit()
    kinds = [summary(item)[:2] for item in read_all(client, w.me)]
    assert kinds == [("bot.forked", w.bob.username), ("bot.published", w.alice.username)]
    db.delete(w.a1)
    db.commit()
    assert read_all(client, w.me) == []


def test_items_leave_with_inactive_private_and_blocked_users(
    client: FlaskClient, db: Any, world: Any
) -> None:
    w = world
    w.carol.is_active = False  # owner of the commented bot
    db.commit()
    actors = {item["actor"]["username"] for item in read_all(client, w.me)}
    assert [item["kind"] for item in read_all(client, w.me)] == [
        "bot.published",
        "bot.forked",
        "bot.published",
    ]
    assert actors == {w.alice.username, w.bob.username}
    db.merge(AccountSettings(user_id=w.alice.id, document={"profile_visibility": "private"}))
    db.commit()
    # alice's own items go; bob's fork of her bot stays, the bot being still public.
    assert [summary(item)[:2] for item in read_all(client, w.me)] == [
        ("bot.published", w.bob.username),
        ("bot.forked", w.bob.username),
    ]
    block(w.alice.id, w.me.id)  # alice, owner of the forked bot, blocked the reader
    db.commit()
    assert [summary(item)[:2] for item in read_all(client, w.me)] == [
        ("bot.published", w.bob.username)
    ]


def test_blocking_a_followed_user_removes_them_from_my_feed(
    client: FlaskClient, world: Any
) -> None:
    w = world
    response = client.put(f"/api/v1/users/{w.bob.username}/block", headers=w.me.headers)
    assert response.status_code == 200
    assert {item["actor"]["username"] for item in read_all(client, w.me)} == {w.alice.username}


def make_generation(db: Any, activated_at: datetime, entries: list[dict[str, Any]]) -> int:
    generation = LeaderboardGeneration(
        status="active", formula_version="1", activated_at=activated_at
    )
    db.add(generation)
    db.flush()
    db.execute(
        text(
            f"CREATE TABLE {partition_name(generation.id)} PARTITION OF leaderboard_entries "
            f"FOR VALUES IN ({int(generation.id)})"
        )
    )
    for entry in entries:
        db.add(
            LeaderboardEntry(
                generation_id=generation.id,
                run_id=uuid.uuid4(),
                instrument="BTC-USD",
                strategy="sma_crossover",
                instrument_rank=entry["rank"],
                strategy_rank=entry["rank"],
                score=1.0,
                formula_version="1",
                metrics_version="1",
                days_tracked=30.0,
                trades=10,
                as_of_ts=0,
                **entry,
            )
        )
    db.commit()
    return generation.id


def test_new_top_placings_of_followed_users_sit_at_the_generations_activation(
    client: FlaskClient, db: Any, instruments: None, person: Callable[..., Any]
) -> None:
    me, alice, carol = person(), person(), person()
    follow(me.id, alice.id)
    star, steady = bot_of(db, alice, "star"), bot_of(db, alice, "steady")
    other = bot_of(db, carol, "other")
    went_live = datetime(2026, 1, 1, tzinfo=UTC)
    act(db, "bot.published", alice, star, at=went_live - timedelta(hours=1))
    board = [
        # New in two top tens: one item, at its best place.
        ("30d", "sharpe", 2, star, None),
        ("7d", "return", 5, star, None),
        # Already in a top ten last time: not news.
        ("30d", "return", 1, steady, 3),
        # Outside the top ten: not a placing.
        ("90d", "psr", 11, steady, None),
        # Not followed.
        ("30d", "psr", 1, other, None),
    ]
    make_generation(
        db,
        went_live,
        [
            {
                "period": period,
                "metric": metric,
                "rank": rank,
                "bot_id": bot.id,
                "owner_id": bot.owner_id,
                "previous_rank": previous,
            }
            for period, metric, rank, bot, previous in board
        ],
    )
    act(db, "bot.published", alice, steady, at=went_live + timedelta(minutes=5))

    for limit in (1, 25):
        items = read_all(client, me, limit=limit)
        assert [(item["kind"], item["bot"]["name"]) for item in items] == [
            ("bot.published", "steady"),
            ("leaderboard.placed", "star"),
            ("bot.published", "star"),
        ]
    placed = items[1]
    assert placed["placing"] == {"rank": 2, "period": "30d", "metric": "sharpe", "boards": 2}
    assert placed["actor"]["username"] == alice.username
    assert datetime.fromisoformat(placed["created_at"]) == went_live

    star.hidden_at = datetime.now(UTC)
    db.commit()
    assert [item["kind"] for item in read_all(client, me)] == ["bot.published"]


def test_published_bots_come_from_the_real_endpoints(
    client: FlaskClient, db: Any, instruments: None, person: Callable[..., Any]
) -> None:
    me, alice = person(), person()
    assert client.put(f"/api/v1/users/{alice.username}/follow", headers=me.headers).json[
        "following"
    ]
    made = client.post("/api/v1/bots", json={**BOT, "name": "quiet"}, headers=alice.headers).json
    assert read_all(client, me) == []  # a private bot is not news
    patched = client.patch(
        f"/api/v1/bots/{made['id']}", json={"visibility": "public"}, headers=alice.headers
    )
    assert patched.status_code == 200
    loud = client.post(
        "/api/v1/bots", json={**BOT, "name": "loud", "visibility": "public"}, headers=alice.headers
    )
    assert loud.status_code == 201
    # Renaming a bot that is already public is not a new publication.
    client.patch(f"/api/v1/bots/{made['id']}", json={"name": "quieter"}, headers=alice.headers)
    assert [item["bot"]["name"] for item in read_all(client, me)] == ["loud", "quieter"]


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": 0},
        {"cursor": 2**63},
        {"cursor": "x"},
        {"limit": 0},
        {"limit": 101},
        {"kind": "bot"},
    ],
)
def test_bad_feed_queries_are_422(
    client: FlaskClient, person: Callable[..., Any], query: dict[str, Any]
) -> None:
    response = client.get(FEED, query_string=query, headers=person().headers)
    assert response.status_code == 422


def test_the_feed_needs_a_token(client: FlaskClient, db: Any) -> None:
    assert client.get(FEED).status_code == 401
