"""Follows: idempotent follow and unfollow, counts, lists, who may be followed, the limit."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from models.community.tables import Follow
from models.people.tables import AccountSettings, Notification


def follow(client: FlaskClient, who: Any, username: str) -> Any:
    return client.put(f"/api/v1/users/{username}/follow", headers=who.headers)


def unfollow(client: FlaskClient, who: Any, username: str) -> Any:
    return client.delete(f"/api/v1/users/{username}/follow", headers=who.headers)


def names(body: dict[str, Any]) -> list[str]:
    return [item["username"] for item in body["items"]]


def followed_notices(db: Any, user: Any) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(Notification).where(
            Notification.user_id == user.id, Notification.event == "user.followed"
        )
    )
    return [row.data for row in rows]


def test_following_twice_is_following_once_and_notifies_once(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob = person(), person()
    first = follow(client, alice, bob.username)
    assert first.status_code == 200, first.json
    assert first.json == {"username": bob.username, "following": True, "followers": 1}
    again = follow(client, alice, bob.username.upper())  # any case names the same user
    assert again.status_code == 200
    assert again.json == {"username": bob.username, "following": True, "followers": 1}
    assert followed_notices(db, bob) == [{"by": alice.username}]
    rows = db.scalars(select(Follow).where(Follow.followee_id == bob.id)).all()
    assert [(row.follower_id, row.followee_id) for row in rows] == [(alice.id, bob.id)]


def test_unfollowing_is_idempotent_and_counts_follow(
    client: FlaskClient, person: Callable[..., Any]
) -> None:
    alice, bob, carol = person(), person(), person()
    assert follow(client, alice, bob.username).status_code == 200
    assert follow(client, carol, bob.username).json["followers"] == 2
    assert follow(client, alice, carol.username).status_code == 200
    profile = client.get(f"/api/v1/users/{bob.username}").json
    assert profile["counts"]["followers"] == 2
    assert profile["counts"]["following"] == 0
    assert client.get(f"/api/v1/users/{alice.username}").json["counts"]["following"] == 2

    assert unfollow(client, alice, bob.username).status_code == 204
    assert unfollow(client, alice, bob.username).status_code == 204
    assert client.get(f"/api/v1/users/{bob.username}").json["counts"]["followers"] == 1
    following = client.get("/api/v1/me/following", headers=alice.headers).json
    assert names(following) == [carol.username]


def test_following_myself_is_refused(client: FlaskClient, person: Callable[..., Any]) -> None:
    alice = person()
    response = follow(client, alice, alice.username)
    assert response.status_code == 422
    assert response.json["message"] == "You cannot follow yourself."
    assert client.get("/api/v1/me/following", headers=alice.headers).json["items"] == []


def test_private_disabled_and_unknown_users_are_the_same_404(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, private, disabled = person(), person(), person()
    db.merge(AccountSettings(user_id=private.id, document={"profile_visibility": "private"}))
    disabled.disabled_at = datetime.now(UTC)
    disabled.is_active = False
    db.commit()
    answers = []
    for name in (private.username, disabled.username, "nobody_here", "é" * 500):
        response = follow(client, alice, name)
        assert response.status_code == 404, (name, response.json)
        answers.append(response.json["message"])
        for path in ("followers", "following"):
            listed = client.get(f"/api/v1/users/{name}/{path}", headers=alice.headers)
            assert listed.status_code == 404
            assert listed.json["message"] == answers[0]
    assert set(answers) == {"No user with that name."}
    assert db.scalars(select(Follow).where(Follow.follower_id == alice.id)).all() == []
    assert followed_notices(db, private) == []


def test_a_followed_user_who_goes_private_can_still_be_unfollowed(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    alice, bob = person(), person()
    assert follow(client, alice, bob.username).status_code == 200
    db.merge(AccountSettings(user_id=bob.id, document={"profile_visibility": "private"}))
    db.commit()
    [item] = client.get("/api/v1/me/following", headers=alice.headers).json["items"]
    assert item["username"] == bob.username
    assert item["display_name"] is None and item["profile_url"] is None
    assert unfollow(client, alice, bob.username).status_code == 204
    assert client.get("/api/v1/me/following", headers=alice.headers).json["items"] == []
    assert unfollow(client, alice, "nobody_here").status_code == 404


def test_lists_show_public_summaries_leave_out_inactive_accounts_and_page_once(
    client: FlaskClient, db: Any, person: Callable[..., Any]
) -> None:
    star = person()
    fans = [person() for _ in range(5)]
    fans[0].display_name = "Fan Zero"
    db.commit()
    for fan in fans:
        assert follow(client, fan, star.username).status_code == 200
    fans[3].is_active = False  # disabled after following: left out of lists and counts
    db.merge(AccountSettings(user_id=fans[1].id, document={"profile_visibility": "private"}))
    db.commit()

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/api/v1/users/{star.username}/followers", query_string=query).json
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    expected = [fans[4], fans[2], fans[1], fans[0]]  # newest follow first
    assert [item["username"] for item in seen] == [fan.username for fan in expected]
    by_name = {item["username"]: item for item in seen}
    assert by_name[fans[0].username]["display_name"] == "Fan Zero"
    assert by_name[fans[0].username]["profile_url"] == f"/api/v1/users/{fans[0].username}"
    assert by_name[fans[1].username]["profile_url"] is None
    assert client.get(f"/api/v1/users/{star.username}").json["counts"]["followers"] == 4
    mine = client.get("/api/v1/me/followers", headers=star.headers).json
    assert names(mine) == [fan.username for fan in expected]
    theirs = client.get(f"/api/v1/users/{fans[0].username}/following").json
    assert names(theirs) == [star.username]


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"cursor": "nonsense"}, {"cursor": "9" * 40 + ".00"}],
)
def test_bad_list_queries_are_422(
    client: FlaskClient, person: Callable[..., Any], query: dict[str, Any]
) -> None:
    alice = person()
    response = client.get("/api/v1/me/followers", query_string=query, headers=alice.headers)
    assert response.status_code == 422


@pytest.fixture
def low_follow_limit(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(rate_limit_follow="2/minute")
    yield
    app.extensions["botyard.settings"] = original


def test_follows_past_the_budget_are_429(
    client: FlaskClient, person: Callable[..., Any], low_follow_limit: None
) -> None:
    alice, bob = person(), person()
    assert follow(client, alice, bob.username).status_code == 200
    assert unfollow(client, alice, bob.username).status_code == 204
    refused = follow(client, alice, bob.username)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert client.get("/api/v1/me/following", headers=alice.headers).json["items"] == []
