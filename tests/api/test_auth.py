"""Registration and login."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy import select

from models.identity.passwords import MEMORY_KIB, TIME_COST
from models.identity.tables import User
from tests.helpers import PASSWORD, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


def register(client: FlaskClient, **body: Any) -> Any:
    payload = {"email": "Trader@Example.com", "username": "trader_1", "password": PASSWORD}
    payload.update(body)
    return client.post(REGISTER, json=payload)


def test_register_returns_user_without_secrets(client: FlaskClient) -> None:
    response = register(client)
    assert response.status_code == 201
    body = response.json
    assert body["email"] == "Trader@example.com"  # as typed; the domain lower-cased
    assert body["username"] == "trader_1"
    assert body["roles"] == ["user"]
    assert body["is_active"] is True
    assert "password" not in response.text and "argon2" not in response.text
    assert PASSWORD not in response.text


def test_register_stores_argon2id_with_owasp_parameters(client: FlaskClient, db: Any) -> None:
    register(client)
    stored = db.scalars(select(User.password_hash).where(User.username == "trader_1")).one()
    assert stored.startswith("$argon2id$")
    assert f"m={MEMORY_KIB},t={TIME_COST}" in stored
    assert MEMORY_KIB >= 19 * 1024 and TIME_COST >= 2


def test_email_is_unique_ignoring_case(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    again = register(client, email="TRADER@example.COM", username="other_name")
    assert again.status_code == 409
    assert again.json["message"] == "That email is already registered."


def test_username_is_unique(client: FlaskClient) -> None:
    assert register(client).status_code == 201
    again = register(client, email="someone@else.com")
    assert again.status_code == 409
    assert "username" in again.json["message"]


def test_register_validation_points_at_each_field(client: FlaskClient) -> None:
    response = client.post(
        REGISTER, json={"email": "not-an-email", "username": "No", "password": "short"}
    )
    assert response.status_code == 422
    fields = response.json["errors"]["json"]
    assert set(fields) == {"email", "username", "password"}
    assert response.json["code"] == 422 and response.json["request_id"]


def test_register_bounds_password_and_username(client: FlaskClient) -> None:
    assert register(client, password="x" * 129).status_code == 422
    assert register(client, password="x" * 9).status_code == 422
    assert register(client, username="a" * 33).status_code == 422
    assert register(client, username="-bad-name").status_code == 422
    assert register(client, username="abc", password="x" * 128).status_code == 201


def test_register_rejects_unknown_fields(client: FlaskClient, db: Any) -> None:
    response = register(client, roles=["admin"], is_active=False)
    assert response.status_code == 422
    assert set(response.json["errors"]["json"]) == {"roles", "is_active"}
    assert db.scalars(select(User).where(User.username == "trader_1")).first() is None


def test_login_with_email_or_username(client: FlaskClient, make_user: Any) -> None:
    user = make_user("loginer")
    for login in ("loginer", "LOGINER@example.com", user.email):
        response = client.post(LOGIN, json={"login": login, "password": PASSWORD})
        assert response.status_code == 200, login
        body = response.json
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 15 * 60
        assert body["session"]["current"] is True
        assert body["access_token"] != body["refresh_token"]


def test_unknown_user_and_wrong_password_look_the_same(client: FlaskClient, make_user: Any) -> None:
    make_user("victim")
    wrong = client.post(LOGIN, json={"login": "victim", "password": "not-the-password"})
    unknown = client.post(LOGIN, json={"login": "nobody", "password": "not-the-password"})
    assert wrong.status_code == unknown.status_code == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.json) == strip(unknown.json)
    assert wrong.json["message"] == "Wrong login or password."


def test_login_creates_a_session_row_with_ip_and_agent(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("sessioner")
    tokens = login(
        "sessioner",
        headers={"User-Agent": "pytest-agent/1.0"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    sessions = client.get("/api/v1/auth/sessions", headers=bearer(tokens["access_token"])).json
    assert len(sessions) == 1
    assert sessions[0]["ip"] == "10.1.2.3"
    assert sessions[0]["user_agent"] == "pytest-agent/1.0"
    assert sessions[0]["id"] == tokens["session"]["id"]


def test_login_rehashes_outdated_password_hash(
    client: FlaskClient, make_user: Any, db: Any
) -> None:
    user = make_user("oldhash")
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    user.password_hash = weak.hash(PASSWORD)
    db.commit()
    assert client.post(LOGIN, json={"login": "oldhash", "password": PASSWORD}).status_code == 200
    db.refresh(user)
    assert f"m={MEMORY_KIB},t={TIME_COST}" in user.password_hash


def test_disabled_user_cannot_log_in(client: FlaskClient, make_user: Any, db: Any) -> None:
    user = make_user("sleeper")
    user.is_active = False
    db.commit()
    response = client.post(LOGIN, json={"login": "sleeper", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json["message"] == "Wrong login or password."


def test_me_shows_roles_and_permissions(client: FlaskClient, make_user: Any, login: Any) -> None:
    make_user("modder", roles=("moderator", "user"))
    me = client.get("/api/v1/me", headers=bearer(login("modder")["access_token"])).json
    assert me["username"] == "modder"
    assert me["roles"] == ["moderator", "user"]
    assert me["permissions"] == ["content:moderate", "users:read"]
    assert "password_hash" not in me
