"""Blocks: idempotent, never oneself, end follows both ways, refuse follows, silence notices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import or_, select

from models.community.blocks import notify_unless_blocked
from models.community.tables import Block, Follow
from models.people.tables import AccountSettings, Notification


def put(client: FlaskClient, who: Any, username: str, what: str) -> Any:
    return client.put(f"/api/v1/users/{username}/{what}", headers=who.headers)


def delete(client: FlaskClient, who: Any, username: str, what: str) -> Any:
    return client.delete(f"/api/v1/users/{username}/{what}", headers=who.headers)


def follows_between(db: Any, a: Any, b: Any) -> list[tuple[Any, Any]]:
    rows = db.execute(
        select(Follow.follower_id, Follow.followee_id).where(
            or_(Follow.follower_id.in_([a.id, b.id]), Follow.followee_id.in_([a.id, b.id]))
        )
    ).all()
    return [tuple(row) for row in rows]


def notices(db: Any, user: Any) -> list[str]:
    return list(db.scalars(select(Notification.event).where(Notification.user_id == user.id)))


def test_blocking_is_idempotent_and_listed(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob = person(), person()
    first = put(client, alice, bob.username, "block")
    assert first.status_code == 200
    assert first.json == {"username": bob.username, "blocked": True}
    assert put(client, alice, bob.username, "block").json == first.json
    rows = db.execute(select(Block.blocker_id, Block.blocked_id)).all()
    assert [tuple(row) for row in rows] == [(alice.id, bob.id)]
    listed = client.get("/api/v1/me/blocks", headers=alice.headers).json
    assert [item["username"] for item in listed["items"]] == [bob.username]
    assert client.get("/api/v1/me/blocks", headers=bob.headers).json["items"] == []

    assert delete(client, alice, bob.username, "block").status_code == 204
    assert delete(client, alice, bob.username, "block").status_code == 204
    assert client.get("/api/v1/me/blocks", headers=alice.headers).json["items"] == []


def test_blocking_myself_or_nobody_is_refused(
    client: FlaskClient, person: Callable[..., Any]
) -> None:
    alice = person()
    mine = put(client, alice, alice.username, "block")
    assert mine.status_code == 422
    assert mine.json["message"] == "You cannot block yourself."
    assert put(client, alice, "nobody_here", "block").status_code == 404
    assert delete(client, alice, "nobody_here", "block").status_code == 404


def test_a_private_profile_can_still_be_blocked(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, shy = person(), person()
    db.merge(AccountSettings(user_id=shy.id, document={"profile_visibility": "private"}))
    db.commit()
    assert put(client, alice, shy.username, "block").status_code == 200
    [item] = client.get("/api/v1/me/blocks", headers=alice.headers).json["items"]
    assert item == {
        "username": shy.username,
        "display_name": None,
        "profile_url": None,
        "since": item["since"],
    }


def test_blocking_drops_the_follows_both_ways_for_good(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob, carol = person(), person(), person()
    assert put(client, alice, bob.username, "follow").status_code == 200
    assert put(client, bob, alice.username, "follow").status_code == 200
    assert put(client, carol, bob.username, "follow").status_code == 200
    assert put(client, alice, bob.username, "block").status_code == 200
    assert follows_between(db, alice, bob) == [(carol.id, bob.id)]
    assert client.get(f"/api/v1/users/{bob.username}").json["counts"]["followers"] == 1
    # Lifting the block does not bring the follows back.
    assert delete(client, alice, bob.username, "block").status_code == 204
    assert follows_between(db, alice, bob) == [(carol.id, bob.id)]
    assert put(client, alice, bob.username, "follow").status_code == 200


def test_a_block_refuses_follows_either_way_without_telling_the_blocked(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob = person(), person()
    assert put(client, alice, bob.username, "block").status_code == 200
    mine = put(client, alice, bob.username, "follow")
    assert mine.status_code == 409
    assert "unblock" in mine.json["message"]
    theirs = put(client, bob, alice.username, "follow")
    unknown = put(client, bob, "nobody_here", "follow")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json["message"] == unknown.json["message"]
    assert follows_between(db, alice, bob) == []
    assert "user.followed" not in notices(db, alice)


def test_a_block_silences_notifications_from_the_blocked(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob = person(), person()
    assert put(client, alice, bob.username, "block").status_code == 200
    assert notify_unless_blocked(bob.id, alice.id, "user.followed", {"by": bob.username}) is None
    sent = notify_unless_blocked(alice.id, bob.id, "user.followed", {"by": alice.username})
    assert sent is not None and sent.user_id == bob.id
    db.commit()
    assert notices(db, alice) == []
    # Once unblocked, a follow notifies again.
    assert delete(client, alice, bob.username, "block").status_code == 204
    assert put(client, bob, alice.username, "follow").status_code == 200
    assert notices(db, alice) == ["user.followed"]


def test_my_blocks_page_by_cursor_each_once(
    client: FlaskClient, person: Callable[..., Any]
) -> None:
    alice = person()
    others = [person() for _ in range(5)]
    for other in others:
        assert put(client, alice, other.username, "block").status_code == 200
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/me/blocks", query_string=query, headers=alice.headers).json
        seen.extend(item["username"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [other.username for other in reversed(others)]


@pytest.fixture
def low_follow_limit(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(rate_limit_follow="1/minute")
    yield
    app.extensions["botyard.settings"] = original


def test_blocks_count_against_the_follow_budget(
    client: FlaskClient, db: Any, person: Callable[..., Any], low_follow_limit: None
) -> None:
    alice, bob, carol = person(), person(), person()
    assert put(client, alice, bob.username, "block").status_code == 200
    assert put(client, alice, carol.username, "block").status_code == 429
    assert db.scalars(select(Block.blocked_id).where(Block.blocker_id == alice.id)).all() == [
        bob.id
    ]
