"""Login and registration are rate limited per IP and per account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers import PASSWORD

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"


@pytest.fixture
def tight_limits(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(
        rate_limit_login_ip="5/minute",
        rate_limit_login_account="3/minute",
        rate_limit_register_ip="2/minute",
    )
    yield
    app.extensions["botyard.settings"] = original


def _login(client: FlaskClient, login: str, password: str, ip: str) -> Any:
    return client.post(
        LOGIN, json={"login": login, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )


def test_login_limited_per_ip(client: FlaskClient, make_user: Any, tight_limits: None) -> None:
    make_user("ipuser")
    statuses = [
        _login(client, f"someone{i}", "wrong-password", "10.0.0.1").status_code for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    blocked = _login(client, "ipuser", PASSWORD, "10.0.0.1")
    assert blocked.status_code == 429
    body = blocked.json
    assert body["code"] == 429 and body["status"] == "Too Many Requests" and body["request_id"]
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    # Another address is unaffected.
    assert _login(client, "ipuser", PASSWORD, "10.0.0.2").status_code == 200


def test_failed_logins_limited_per_account_across_ips(
    client: FlaskClient, make_user: Any, tight_limits: None
) -> None:
    make_user("target")
    statuses = [
        _login(client, "target", "wrong-password", f"10.0.1.{i}").status_code for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # The right password from a fresh address is still refused while the account is cooling down.
    assert _login(client, "TARGET", PASSWORD, "10.0.1.99").status_code == 429
    # Other accounts are not affected.
    make_user("bystander")
    assert _login(client, "bystander", PASSWORD, "10.0.1.100").status_code == 200


def test_successful_logins_do_not_use_up_the_account_limit(
    client: FlaskClient, make_user: Any, tight_limits: None
) -> None:
    make_user("regular")
    statuses = [_login(client, "regular", PASSWORD, f"10.0.2.{i}").status_code for i in range(4)]
    assert statuses == [200] * 4


def test_register_limited_per_ip(client: FlaskClient, tight_limits: None) -> None:
    def register(i: int) -> int:
        return client.post(
            REGISTER,
            json={"email": f"r{i}@example.com", "username": f"reg_{i}", "password": PASSWORD},
            environ_base={"REMOTE_ADDR": "10.0.3.1"},
        ).status_code

    assert [register(i) for i in range(3)] == [201, 201, 429]
