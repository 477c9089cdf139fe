"""Recording activity: a row for each wired action, the write rule, failures that stay quiet."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient

from models.identity.password_resets import issue_reset_token
from models.identity.tables import User
from models.people.tables import Activity
from tests.helpers import PASSWORD, bearer, load_btc_history
from workers.main import build_worker
from workers.queues import NOTIFICATIONS

IP = "203.0.113.7"
AGENT = "activity-test/1.0"
ENV = {"REMOTE_ADDR": IP}
HEADERS = {"User-Agent": AGENT}
DAY = 86_400_000
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BOT = {
    "name": "tracked",
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}},
}


@dataclass
class Scene:
    """A user (with a login-fresh token), an admin, and calls from one address and browser."""

    app: Flask
    client: FlaskClient
    db: Any
    user: User
    admin: User
    token: dict[str, Any]
    admin_headers: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {**bearer(self.token["access_token"]), **HEADERS}

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        response = self.client.open(
            path, method=method, headers=headers or self.headers, environ_base=ENV, **kw
        )
        assert response.status_code < 500, response.json
        return response

    def bot(self, **fields: Any) -> str:
        response = self.call("POST", "/api/v1/bots", json={**BOT, **fields})
        assert response.status_code == 201, response.json
        return str(response.json["id"])


def rows(db: Any, verb: str | None = None) -> list[Activity]:
    stmt = sa.select(Activity).order_by(Activity.id)
    if verb is not None:
        stmt = stmt.where(Activity.verb == verb)
    return list(db.scalars(stmt))


@pytest.fixture
def scene(app: Flask, client: FlaskClient, db: Any, make_user: Any, login: Any) -> Scene:
    load_btc_history(END - 20 * DAY, END)
    db.commit()
    user = make_user("tracked_user")
    admin = make_user("tracked_admin", roles=("admin", "user"))
    token = login(user.username)
    admin_headers = {**bearer(login(admin.username)["access_token"]), **HEADERS}
    db.execute(sa.delete(Activity))  # the set-up's own logins
    db.commit()
    return Scene(app, client, db, user, admin, token, admin_headers)


class Inbox:
    """An SMTP server that accepts every message (the reset job sends one)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


@pytest.fixture
def smtp(app: Flask) -> Iterator[None]:
    with socket.socket() as probe:  # aiosmtpd's Controller cannot start on port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(smtp_url=f"smtp://127.0.0.1:{port}")
    yield
    app.extensions["botyard.settings"] = original
    controller.stop()


# Each action: what it does through the API, and the row it must leave as
# (actor, object_type, object_id); "user"/"admin" name the scene's accounts.
def _register(s: Scene) -> tuple[Any, str, Any]:
    body = {"email": "newcomer@example.com", "username": "newcomer", "password": PASSWORD}
    new = s.call("POST", "/api/v1/auth/register", headers=HEADERS, json=body).json["id"]
    return new, "user", new


def _login(s: Scene) -> tuple[Any, str, Any]:
    body = {"login": s.user.username, "password": PASSWORD}
    sid = s.call("POST", "/api/v1/auth/login", headers=HEADERS, json=body).json["session"]["id"]
    return "user", "session", sid


def _login_failed(s: Scene) -> tuple[Any, str, Any]:
    body = {"login": s.user.username, "password": "not-the-password"}
    assert s.call("POST", "/api/v1/auth/login", headers=HEADERS, json=body).status_code == 401
    return "user", "user", "user"


def _logout(s: Scene) -> tuple[Any, str, Any]:
    assert s.call("POST", "/api/v1/auth/logout").status_code == 204
    return "user", "session", s.token["session"]["id"]


def _revoke_one(s: Scene) -> tuple[Any, str, Any]:
    other = s.call(
        "POST",
        "/api/v1/auth/login",
        headers=HEADERS,
        json={"login": s.user.username, "password": PASSWORD},
    ).json["session"]["id"]
    s.db.execute(sa.delete(Activity).where(Activity.verb == "auth.login"))
    assert s.call("DELETE", f"/api/v1/auth/sessions/{other}").status_code == 204
    return "user", "session", other


def _revoke_others(s: Scene) -> tuple[Any, None, None]:
    assert s.call("DELETE", "/api/v1/auth/sessions").status_code == 200
    return "user", None, None


def _reset(s: Scene) -> tuple[Any, str, Any]:
    token = issue_reset_token(s.user, datetime.now(UTC), 600)
    s.db.commit()
    body = {"token": token, "new_password": "a-new-password-1"}
    assert (
        s.call("POST", "/api/v1/auth/password/reset", headers=HEADERS, json=body).status_code == 204
    )
    return "user", "user", "user"


def _changed(s: Scene) -> tuple[Any, str, Any]:
    body = {"current_password": PASSWORD, "new_password": "a-new-password-2"}
    assert s.call("POST", "/api/v1/auth/password/change", json=body).status_code == 204
    return "user", "user", "user"


def _bot_created(s: Scene) -> tuple[Any, str, Any]:
    return "user", "bot", s.bot()


def _bot_updated(s: Scene) -> tuple[Any, str, Any]:
    bot_id = s.bot()
    assert s.call("PATCH", f"/api/v1/bots/{bot_id}", json={"name": "renamed"}).status_code == 200
    return "user", "bot", bot_id


def _bot_action(*steps: str) -> Any:
    def act(s: Scene) -> tuple[Any, str, Any]:
        bot_id = s.bot()
        for step in steps:
            response = s.call("POST", f"/api/v1/bots/{bot_id}/{step}")
            assert response.status_code == 200, response.json
        return "user", "bot", bot_id

    return act


def _bot_deleted(s: Scene) -> tuple[Any, str, Any]:
    bot_id = s.bot()
    assert s.call("DELETE", f"/api/v1/bots/{bot_id}").status_code == 204
    return "user", "bot", bot_id


def _backtest(s: Scene, cancel: bool = False) -> tuple[Any, str, Any]:
    body = {"bot_id": s.bot(), "start": END - 10 * DAY, "end": END}
    backtest_id = s.call("POST", "/api/v1/backtests", json=body).json["id"]
    if cancel:
        assert s.call("DELETE", f"/api/v1/backtests/{backtest_id}").status_code == 200
    return "user", "backtest", backtest_id


def _admin(path: str, **kw: Any) -> Any:
    def act(s: Scene) -> tuple[Any, str, Any]:
        method = "PUT" if path == "roles" else "POST"
        url = f"/api/v1/admin/users/{s.user.id}/{path}"
        if path == "enable":
            assert s.call("POST", f"{url[:-7]}/disable", headers=s.admin_headers).status_code == 200
        assert s.call(method, url, headers=s.admin_headers, **kw).status_code == 200
        return "admin", "user", "user"

    return act


ACTIONS = {
    "auth.registered": _register,
    "auth.login": _login,
    "auth.login_failed": _login_failed,
    "auth.logout": _logout,
    "session.revoked": _revoke_one,
    "session.revoked/others": _revoke_others,
    "password.reset": _reset,
    "password.changed": _changed,
    "bot.created": _bot_created,
    "bot.updated": _bot_updated,
    "bot.started": _bot_action("start"),
    "bot.paused": _bot_action("start", "pause"),
    "bot.resumed": _bot_action("start", "pause", "resume"),
    "bot.stopped": _bot_action("start", "stop"),
    "bot.deleted": _bot_deleted,
    "backtest.created": _backtest,
    "backtest.cancelled": lambda s: _backtest(s, cancel=True),
    "admin.roles_changed": _admin("roles", json={"roles": ["user", "moderator"]}),
    "admin.user_disabled": _admin("disable"),
    "admin.user_enabled": _admin("enable"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_wired_action_leaves_its_row(scene: Scene, action: str) -> None:
    verb = action.split("/", maxsplit=1)[0]
    actor, object_type, object_id = ACTIONS[action](scene)
    names = {"user": str(scene.user.id), "admin": str(scene.admin.id)}
    (row,) = rows(scene.db, verb)
    assert str(row.actor_id) == names.get(actor, actor)
    assert row.object_type == object_type
    assert row.object_id == (names.get(object_id, object_id) if object_id else None)
    assert str(row.ip) == IP and row.user_agent == AGENT
    assert row.created_at is not None


def test_action_data_is_small_and_says_what_changed(scene: Scene) -> None:
    _admin("roles", json={"roles": ["user", "moderator"]})(scene)
    bot_id = scene.bot()
    scene.call("PATCH", f"/api/v1/bots/{bot_id}", json={"name": "renamed", "fee": 0.002})
    (roles,) = rows(scene.db, "admin.roles_changed")
    assert roles.data == {"before": ["user"], "after": ["moderator", "user"]}
    (updated,) = rows(scene.db, "bot.updated")
    assert updated.data == {"fields": ["fee", "name"]}  # which fields, not their values


def test_failed_login_never_stores_what_was_typed(scene: Scene) -> None:
    typed = "Tr0ub4dor&3-mistyped-into-login"
    for login in (typed, scene.user.email):
        response = scene.call(
            "POST", "/api/v1/auth/login", headers=HEADERS, json={"login": login, "password": typed}
        )
        assert response.status_code == 401
    unknown, known = rows(scene.db, "auth.login_failed")
    # A login naming no account: a row without an actor; naming one: that account.
    assert unknown.actor_id is None and unknown.object_id is None
    assert known.actor_id == scene.user.id
    for row in (unknown, known):
        assert typed not in str(row.data) and scene.user.email not in str(row.data)
        assert row.data == {} and str(row.ip) == IP


def test_failed_requests_record_nothing(scene: Scene, make_user: Any, login: Any) -> None:
    scene.bot(name="taken")
    assert scene.call("POST", "/api/v1/bots", json={**BOT, "name": "taken"}).status_code == 409
    stranger = {**bearer(login(make_user().username)["access_token"]), **HEADERS}
    bot_id = rows(scene.db, "bot.created")[0].object_id
    assert scene.call("DELETE", f"/api/v1/bots/{bot_id}", headers=stranger).status_code == 404
    assert scene.call("POST", f"/api/v1/bots/{bot_id}/pause").status_code == 409
    assert [row.verb for row in rows(scene.db) if row.verb != "auth.login"] == ["bot.created"]


def test_a_refused_activity_write_never_fails_the_request(
    scene: Scene, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # The database itself refuses every activity row (a trigger, inside this test's transaction).
    scene.db.execute(
        sa.text(
            "CREATE FUNCTION refuse_activity() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'activities are read-only today'; END $$;"
            "CREATE TRIGGER refuse BEFORE INSERT ON activities "
            "FOR EACH ROW EXECUTE FUNCTION refuse_activity()"
        )
    )
    scene.db.commit()
    response = scene.call("POST", "/api/v1/bots", json=BOT)
    assert response.status_code == 201
    # The bot exists (the view's commit stands); the row was logged as lost, without data.
    bot_id = response.json["id"]
    assert scene.call("GET", f"/api/v1/bots/{bot_id}").status_code == 200
    assert rows(scene.db) == []
    logged = caplog.text + "".join(capfd.readouterr())
    (line,) = [line for line in logged.splitlines() if "activity_not_recorded" in line]
    assert "bot.created" in line and "tracked" not in line  # the verb, never the data
    assert (
        scene.call(
            "POST", "/api/v1/auth/login", headers=HEADERS, json={"login": "x", "password": "y"}
        ).status_code
        == 401
    )


def test_tracking_off_records_nothing(scene: Scene) -> None:
    original = scene.app.extensions["botyard.settings"]
    scene.app.extensions["botyard.settings"] = original.replace(activity_tracking=False)
    try:
        scene.bot()
        scene.call(
            "POST", "/api/v1/auth/login", headers=HEADERS, json={"login": "x", "password": "y"}
        )
    finally:
        scene.app.extensions["botyard.settings"] = original
    assert rows(scene.db) == []


def test_reset_request_is_recorded_by_the_job_for_existing_accounts_only(
    scene: Scene, smtp: None
) -> None:
    for address in (scene.user.email, "nobody@example.com"):
        forgot = scene.call(
            "POST", "/api/v1/auth/password/forgot", headers=HEADERS, json={"email": address}
        )
        assert forgot.status_code == 202
    assert rows(scene.db) == []  # the request records nothing: it does not know the account
    assert build_worker(scene.app, (NOTIFICATIONS,), simple=True).work(burst=True) is True
    (row,) = rows(scene.db)
    assert row.verb == "password.reset_requested" and row.actor_id == scene.user.id
    assert row.object_id == str(scene.user.id) and str(row.ip) == IP and row.user_agent == AGENT
    assert scene.user.email not in str(row.data)


def test_user_agent_is_bounded_and_a_bad_address_is_dropped(scene: Scene) -> None:
    headers = {**scene.headers, "User-Agent": "x" * 5000}
    response = scene.client.post(
        "/api/v1/bots", json=BOT, headers=headers, environ_base={"REMOTE_ADDR": "not-an-ip"}
    )
    assert response.status_code == 201
    (row,) = rows(scene.db, "bot.created")
    assert row.user_agent == "x" * 256 and row.ip is None
