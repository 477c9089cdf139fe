"""Reading activity: my own feed (/me/activity) and the admin audit trail (/admin/audit)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from models.people.activities import record
from models.people.tables import Activity
from tests.helpers import bearer

MINE = "/api/v1/me/activity"
AUDIT = "/api/v1/admin/audit"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def people(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> dict[str, Any]:
    """Two users and an admin, each with a token, and a known history (logins cleared)."""
    alice, bob = make_user("alice_a"), make_user("bob_b")
    admin = make_user("root_admin", roles=("admin", "user"))
    moderator = make_user("mod_m", roles=("moderator", "user"))
    heads = {u.username: bearer(login(u.username)["access_token"]) for u in (alice, bob, admin)}
    heads["mod_m"] = bearer(login(moderator.username)["access_token"])
    db.execute(sa.delete(Activity))
    history = [
        (alice, "bot.created", "bot", "b1"),
        (alice, "bot.started", "bot", "b1"),
        (alice, "backtest.created", "backtest", "t1"),
        (bob, "bot.created", "bot", "b2"),
        (alice, "auth.login", "session", "s1"),
        (admin, "admin.user_disabled", "user", str(bob.id)),
    ]
    for minute, (user, verb, object_type, object_id) in enumerate(history):
        record(
            verb,
            user.id,
            object_type=object_type,
            object_id=object_id,
            data={"n": minute},
            ip="198.51.100.1",
            user_agent="ua",
            created_at=T0 + timedelta(minutes=minute),
        )
    db.commit()
    return {"alice": alice, "bob": bob, "admin": admin, "headers": heads}


def verbs(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [row["verb"] for row in response.json["rows"]]


def test_my_activity_is_mine_only_newest_first(client: FlaskClient, people: dict[str, Any]) -> None:
    response = client.get(MINE, headers=people["headers"]["alice_a"])
    assert verbs(response) == ["auth.login", "backtest.created", "bot.started", "bot.created"]
    first = response.json["rows"][0]
    assert first["actor"] == {"id": str(people["alice"].id), "username": "alice_a"}
    assert first["object_type"] == "session" and first["object_id"] == "s1"
    assert first["ip"] == "198.51.100.1" and first["user_agent"] == "ua"  # my own data: shown
    assert first["data"] == {"n": 4} and first["created_at"].startswith("2026-03-01T12:04")
    assert response.json["next_cursor"] is None
    assert verbs(client.get(MINE, headers=people["headers"]["bob_b"])) == ["bot.created"]


def test_my_activity_filters(client: FlaskClient, people: dict[str, Any]) -> None:
    alice = people["headers"]["alice_a"]

    def get(**query: Any) -> list[str]:
        return verbs(client.get(MINE, query_string=query, headers=alice))

    assert get(verb="bot.created") == ["bot.created"]
    assert get(verb="bot.") == ["bot.started", "bot.created"]  # a prefix ends with a dot
    assert get(verb="bot") == []  # no dot: exact
    since, until = iso(T0 + timedelta(minutes=1)), iso(T0 + timedelta(minutes=4))
    assert get(since=since, until=until) == ["backtest.created", "bot.started"]
    ms = int((T0 + timedelta(minutes=2)).timestamp() * 1000)
    assert get(since=ms) == ["auth.login", "backtest.created"]


def test_cursor_paging_walks_every_row_once(client: FlaskClient, people: dict[str, Any]) -> None:
    alice = people["headers"]["alice_a"]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = client.get(MINE, query_string=query, headers=alice).json
        seen += [row["id"] for row in body["rows"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 4 and seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 201},
        {"cursor": 2**63},
        {"verb": "Bot.Created"},
        {"verb": "x" * 49},
        {"since": "yesterday"},
        {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        {"until": "9999-01-01T00:00:00Z"},
        {"user": "alice_a"},  # an admin filter: not here
        {"colour": "red"},
    ],
)
def test_bad_queries_are_422(
    client: FlaskClient, people: dict[str, Any], query: dict[str, Any]
) -> None:
    response = client.get(MINE, query_string=query, headers=people["headers"]["alice_a"])
    assert response.status_code == 422, response.json


def test_activity_needs_a_login(client: FlaskClient, people: dict[str, Any]) -> None:
    assert client.get(MINE).status_code == 401
    assert client.get(AUDIT).status_code == 401


def test_audit_is_for_admins_only(client: FlaskClient, people: dict[str, Any]) -> None:
    for name in ("alice_a", "mod_m"):  # a moderator may read users, not the audit trail
        assert client.get(AUDIT, headers=people["headers"][name]).status_code == 403


def test_audit_sees_everyone_with_filters(client: FlaskClient, people: dict[str, Any]) -> None:
    admin = people["headers"]["root_admin"]

    def get(**query: Any) -> list[str]:
        return verbs(client.get(AUDIT, query_string=query, headers=admin))

    assert len(get()) == 6
    assert get(user="bob_b") == ["bot.created"]
    assert get(user="BOB_B") == ["bot.created"]  # usernames compare folded
    assert get(user=str(people["alice"].id), verb="bot.") == ["bot.started", "bot.created"]
    assert get(user="nobody_here") == []
    assert get(user=str(uuid.uuid4())) == []
    assert get(object_type="user", object_id=str(people["bob"].id)) == ["admin.user_disabled"]
    assert get(object_type="bot") == ["bot.created", "bot.started", "bot.created"]
    assert get(until=iso(T0 + timedelta(minutes=1))) == ["bot.created"]
    page = client.get(AUDIT, query_string={"limit": 4}, headers=admin).json
    rest = client.get(
        AUDIT, query_string={"limit": 4, "cursor": page["next_cursor"]}, headers=admin
    ).json
    assert len(page["rows"]) == 4 and len(rest["rows"]) == 2 and rest["next_cursor"] is None


def test_an_erased_actor_shows_as_deleted_user(
    client: FlaskClient, db: Any, people: dict[str, Any]
) -> None:
    people["bob"].erased_at = T0
    db.commit()
    body = client.get(
        AUDIT, query_string={"user": "bob_b"}, headers=people["headers"]["root_admin"]
    )
    (row,) = body.json["rows"]
    assert row["actor"] == {"id": str(people["bob"].id), "username": "deleted user"}


def test_rows_without_an_actor_have_a_null_actor(
    client: FlaskClient, db: Any, people: dict[str, Any]
) -> None:
    record("auth.login_failed", None, ip="192.0.2.9")
    db.commit()
    body = client.get(
        AUDIT, query_string={"verb": "auth.login_failed"}, headers=people["headers"]["root_admin"]
    ).json
    (row,) = body["rows"]
    assert row["actor"] is None and row["ip"] == "192.0.2.9" and row["object_id"] is None
