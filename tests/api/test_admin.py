"""Role-based access and the admin endpoints."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from models.identity.users import get_user
from tests.helpers import PASSWORD, bearer

USERS = "/api/v1/admin/users"


def test_plain_user_gets_403_on_admin_endpoints(
    client: FlaskClient, make_user: Any, auth_headers: dict[str, str]
) -> None:
    target = make_user()
    calls = [
        client.get(USERS, headers=auth_headers),
        client.put(f"{USERS}/{target.id}/roles", json={"roles": ["admin"]}, headers=auth_headers),
        client.post(f"{USERS}/{target.id}/disable", headers=auth_headers),
    ]
    for response in calls:
        assert response.status_code == 403
        assert "permission" in response.json["message"]
    assert get_user(target.id).role_names == ["user"]


def test_moderator_can_read_but_not_manage(client: FlaskClient, make_user: Any, login: Any) -> None:
    make_user("mod1", roles=("moderator", "user"))
    target = make_user()
    headers = bearer(login("mod1")["access_token"])
    assert client.get(USERS, headers=headers).status_code == 200
    assert client.post(f"{USERS}/{target.id}/disable", headers=headers).status_code == 403


def test_anonymous_gets_401(client: FlaskClient) -> None:
    assert client.get(USERS).status_code == 401


def test_search_and_paginate(
    client: FlaskClient, make_user: Any, admin_headers: dict[str, str]
) -> None:
    for i in range(5):
        make_user(f"zebra_{i}")
    make_user("other_person")
    first = client.get(USERS, query_string={"q": "ZEBRA", "page_size": 2}, headers=admin_headers)
    assert first.status_code == 200
    assert first.json["total"] == 5
    # One transaction: equal creation times, so the username tie-break decides.
    assert [u["username"] for u in first.json["items"]] == ["zebra_0", "zebra_1"]
    last = client.get(
        USERS, query_string={"q": "zebra", "page_size": 2, "page": 3}, headers=admin_headers
    )
    assert [u["username"] for u in last.json["items"]] == ["zebra_4"]
    wildcard = client.get(USERS, query_string={"q": "%"}, headers=admin_headers)
    assert wildcard.json["total"] == 0  # LIKE metacharacters are matched literally


def test_page_size_is_bounded(client: FlaskClient, admin_headers: dict[str, str]) -> None:
    for params in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"bogus": 1}):
        response = client.get(USERS, query_string=params, headers=admin_headers)
        assert response.status_code == 422, params
        assert "query" in response.json["errors"]


def test_set_roles(
    client: FlaskClient, make_user: Any, login: Any, admin_headers: dict[str, str]
) -> None:
    target = make_user("promoted")
    response = client.put(
        f"{USERS}/{target.id}/roles", json={"roles": ["moderator", "user"]}, headers=admin_headers
    )
    assert response.status_code == 200
    assert response.json["roles"] == ["moderator", "user"]
    me = client.get("/api/v1/me", headers=bearer(login("promoted")["access_token"])).json
    assert "content:moderate" in me["permissions"]


def test_set_roles_validates(
    client: FlaskClient, make_user: Any, admin_headers: dict[str, str]
) -> None:
    target = make_user()
    bad = client.put(
        f"{USERS}/{target.id}/roles", json={"roles": ["emperor"]}, headers=admin_headers
    )
    assert bad.status_code == 422
    empty = client.put(f"{USERS}/{target.id}/roles", json={"roles": []}, headers=admin_headers)
    assert empty.status_code == 422
    missing = client.put(
        f"{USERS}/00000000-0000-0000-0000-000000000000/roles",
        json={"roles": ["user"]},
        headers=admin_headers,
    )
    assert missing.status_code == 404
    assert missing.json["message"] == "No user with that id."


def test_last_admin_cannot_be_demoted_or_disabled(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    admin = make_user("only_admin", roles=("admin", "user"))
    headers = bearer(login("only_admin")["access_token"])
    demote = client.put(f"{USERS}/{admin.id}/roles", json={"roles": ["user"]}, headers=headers)
    assert demote.status_code == 409
    assert client.post(f"{USERS}/{admin.id}/disable", headers=headers).status_code == 409


def test_disable_revokes_sessions_and_blocks_login(
    client: FlaskClient, make_user: Any, login: Any, admin_headers: dict[str, str]
) -> None:
    target = make_user("banned")
    tokens = login("banned")
    response = client.post(f"{USERS}/{target.id}/disable", headers=admin_headers)
    assert response.status_code == 200
    assert response.json["is_active"] is False
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert (
        client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code
        == 401
    )
    relogin = client.post("/api/v1/auth/login", json={"login": "banned", "password": PASSWORD})
    assert relogin.status_code == 401

    enabled = client.post(f"{USERS}/{target.id}/enable", headers=admin_headers)
    assert enabled.json["is_active"] is True
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert (
        client.post(
            "/api/v1/auth/login", json={"login": "banned", "password": PASSWORD}
        ).status_code
        == 200
    )


def test_disabled_users_token_stops_working_even_when_cached(
    client: FlaskClient, make_user: Any, login: Any, db: Any
) -> None:
    """Disabling out of band (no Redis update) still takes effect once the cache entry lapses."""
    user = make_user("quiet")
    tokens = login("quiet")
    user.is_active = False
    db.commit()
    # Without a cached "active" answer the check goes to Postgres and sees the flag.
    assert client.get("/api/v1/me", headers=bearer(tokens["access_token"])).status_code == 401
