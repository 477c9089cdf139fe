"""The API-wide limit: per address for anonymous callers, per user by role, admins exempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import bearer

INSTRUMENTS = "/api/v1/market/instruments"


@contextmanager
def limits(app: Flask, **changes: str) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(**changes)
    try:
        yield
    finally:
        app.extensions["botyard.settings"] = original


def statuses(client: FlaskClient, n: int, ip: str, headers: dict[str, str] | None = None) -> list:
    return [
        client.get(INSTRUMENTS, headers=headers or {}, environ_base={"REMOTE_ADDR": ip}).status_code
        for _ in range(n)
    ]


def test_anonymous_callers_are_limited_per_address(app: Flask, client: FlaskClient) -> None:
    with limits(app, rate_limit_anonymous="3/minute"):
        ok = client.get(INSTRUMENTS, environ_base={"REMOTE_ADDR": "10.1.0.1"})
        assert ok.headers["X-RateLimit-Limit"] == "3"
        assert ok.headers["X-RateLimit-Remaining"] == "2"
        assert int(ok.headers["X-RateLimit-Reset"]) > 0
        assert statuses(client, 3, "10.1.0.1") == [200, 200, 429]
        blocked = client.get(INSTRUMENTS, environ_base={"REMOTE_ADDR": "10.1.0.1"})
        assert blocked.status_code == 429
        body = blocked.json
        assert body["code"] == 429 and body["status"] == "Too Many Requests"
        assert body["request_id"]
        assert body["message"].startswith("Too many requests: the limit is 3 per 1 minute.")
        assert 0 < int(blocked.headers["Retry-After"]) <= 60
        assert statuses(client, 1, "10.1.0.2") == [200]  # another address has its own budget
        # Probes are never limited.
        health = client.get("/health/live", environ_base={"REMOTE_ADDR": "10.1.0.1"})
        assert health.status_code == 200


def test_users_are_limited_per_account_by_role(
    app: Flask, make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]
) -> None:
    client = app.test_client()
    user = bearer(login(make_user().username)["access_token"])
    other = bearer(login(make_user().username)["access_token"])
    moderator = bearer(login(make_user(roles=("moderator",)).username)["access_token"])
    admin = bearer(login(make_user(roles=("admin",)).username)["access_token"])
    with limits(
        app,
        rate_limit_anonymous="1/minute",
        rate_limit_user="2/minute",
        rate_limit_moderator="4/minute",
    ):
        # All from one address: the budget follows the account, not the address.
        assert statuses(client, 3, "10.2.0.1", user) == [200, 200, 429]
        assert statuses(client, 3, "10.2.0.1", other) == [200, 200, 429]
        assert statuses(client, 5, "10.2.0.1", moderator) == [200] * 4 + [429]
        assert statuses(client, 12, "10.2.0.1", admin) == [200] * 12
        admin_call = client.get(INSTRUMENTS, headers=admin, environ_base={"REMOTE_ADDR": "x"})
        assert "X-RateLimit-Limit" not in admin_call.headers
        assert statuses(client, 2, "10.2.0.1") == [200, 429]  # anonymous budget is separate
        # A garbage token is just an anonymous caller, limited by address.
        assert statuses(client, 1, "10.2.0.2", bearer("not-a-token")) == [200]
