"""The login limit cannot be bypassed: hostile bodies, spellings of the account, a dead Redis."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import ResponseError

from api.market.stream import hub
from api.ratelimit import limiter, normalize_identity
from api.ratelimit_storage import OneTripRedisStorage, storage_uri
from models import db as database
from models.identity.rbac import sync_roles
from models.identity.tables import User
from models.identity.users import create_user
from tests.api.gunicorn_process import running_gunicorn
from tests.helpers import PASSWORD, REDIS_URL

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def limits(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(
        rate_limit_login_ip="1000/minute",
        rate_limit_login_account="10/minute",
        rate_limit_login_account_ip="3/minute",
    )
    yield
    app.extensions["botyard.settings"] = original


def _login(client: FlaskClient, login: str, password: str, ip: str) -> int:
    response = client.post(
        LOGIN, json={"login": login, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )
    assert response.status_code < 500, response.json
    return response.status_code


def _deep_body(client: FlaskClient, ip: str) -> Any:
    return client.post(
        LOGIN,
        data='{"login": "target", "password": ' + "[" * 30000,
        content_type="application/json",
        environ_base={"REMOTE_ADDR": ip},
    )


def test_deep_body_does_not_open_the_account_limit(
    client: FlaskClient, make_user: Any, limits: None
) -> None:
    make_user("target")
    before = [_login(client, "target", "wrong-password", f"10.1.0.{i}") for i in range(4)]
    trick = _deep_body(client, "10.1.1.1")
    assert trick.status_code == 400 and trick.json["code"] == 400
    assert "deeper than" in trick.json["message"]
    after = [_login(client, "target", "wrong-password", f"10.1.2.{i}") for i in range(30)]
    # The budget of 10 failed attempts a minute holds across the trick: the password
    # was checked 10 times in all (401), every other attempt was refused before it (429).
    statuses = before + after
    assert statuses.count(401) == 10, statuses
    assert statuses == [401] * 10 + [429] * 24
    storage = limiter.storage
    assert isinstance(storage, OneTripRedisStorage) and not storage.in_memory


def test_one_budget_however_the_account_is_named(
    client: FlaskClient, make_user: Any, limits: None
) -> None:
    make_user("target")
    spellings = [
        "target",
        "TARGET",
        "target@example.com",
        "Target@Example.COM",
        "\uff34\uff41\uff52\uff47\uff45\uff54",  # full-width "Target"
        " target ",
    ]
    statuses = [
        _login(client, spellings[i % len(spellings)], "wrong-password", f"10.2.0.{i}")
        for i in range(12)
    ]
    assert statuses == [401] * 10 + [429] * 2
    make_user("bystander")
    assert _login(client, "bystander", PASSWORD, "10.2.0.99") == 200


def test_a_known_address_is_not_locked_out_by_guessing_elsewhere(
    client: FlaskClient, make_user: Any, limits: None
) -> None:
    make_user("owner")
    assert _login(client, "owner", PASSWORD, "10.3.0.1") == 200  # the owner's usual address
    guesses = [_login(client, "owner", "wrong-password", f"10.3.1.{i}") for i in range(11)]
    assert guesses == [401] * 10 + [429]
    # The account is closed to every address but those it logged in from.
    assert _login(client, "owner", PASSWORD, "10.3.2.1") == 429
    assert _login(client, "owner", PASSWORD, "10.3.0.1") == 200


def test_guessing_from_a_known_address_has_its_own_budget(
    client: FlaskClient, make_user: Any, limits: None
) -> None:
    make_user("shared")
    assert _login(client, "shared", PASSWORD, "10.4.0.1") == 200
    guesses = [_login(client, "shared", "wrong-password", "10.4.0.1") for _ in range(4)]
    assert guesses == [401, 401, 401, 429]
    # That address's budget for this account is spent; the owner elsewhere is unaffected.
    assert _login(client, "shared", PASSWORD, "10.4.0.2") == 200


def test_key_functions_never_raise_on_odd_bodies(
    client: FlaskClient, make_user: Any, limits: None
) -> None:
    make_user("target")
    odd = [
        '{"login": ["target"], "password": "x"}',
        '{"login": {"a": 1}, "password": "x"}',
        '{"login": 1e999, "password": "x"}',
        '{"login": "' + "9" * 5000 + '", "password": "x"}',
        '{"login": "\\ud800", "password": "x"}',
        '["target"]',
        "null",
        '{"login": "' + "t" * 10000 + '", "password": "x"}',
    ]
    for body in odd:
        response = client.post(
            LOGIN,
            data=body,
            content_type="application/json",
            environ_base={"REMOTE_ADDR": "10.5.0.1"},
        )
        assert 400 <= response.status_code < 500, (body[:40], response.json)
        assert response.json["code"] == response.status_code
    storage = limiter.storage
    assert isinstance(storage, OneTripRedisStorage) and not storage.in_memory


def test_normalize_identity() -> None:
    assert normalize_identity(" \uff21lice ") == "alice"
    assert normalize_identity("ALICE@Example.com") == "alice@example.com"
    assert normalize_identity("Stra\u00dfe") == "strasse"


def test_storage_fails_over_on_connection_errors_only(redis: Redis) -> None:
    dead = OneTripRedisStorage(
        storage_uri("redis://127.0.0.1:1/0"), socket_connect_timeout=0.5, socket_timeout=0.5
    )
    assert [dead.acquire_entry("k", 2, 60) for _ in range(3)] == [True, True, False]
    assert dead.in_memory
    assert dead.get_moving_window("k", 2, 60)[1] == 2
    dead.refund_entry("k")  # an attempt that did not count gives its entry back
    assert dead.get_moving_window("k", 2, 60)[1] == 1
    assert dead.acquire_entry("k", 2, 60) is True

    live = OneTripRedisStorage(storage_uri(REDIS_URL or ""))
    redis.set(live.prefixed_key("wrong-type"), "not a list")
    with pytest.raises(ResponseError):
        live.acquire_entry("wrong-type", 2, 60)
    assert not live.in_memory
    assert [live.acquire_entry("fine", 2, 60) for _ in range(3)] == [True, True, False]
    live.refund_entry("fine")
    assert live.acquire_entry("fine", 2, 60) is True


def test_retry_after_on_503_is_the_documented_value(
    app: Flask, client: FlaskClient, instruments: None
) -> None:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(
        web_max_streams=1, rate_limit_anonymous="3/minute"
    )
    places = hub(app)
    assert places.reserve(1)  # the process's one stream place is taken: the next is a 503
    try:
        response = client.get("/api/v1/market/stream?symbols=BTC-USD")
    finally:
        places.unreserve()
        app.extensions["botyard.settings"] = original
    assert response.status_code == 503 and response.json["code"] == 503
    assert response.headers["X-RateLimit-Limit"] == "3"  # the limiter did see it
    assert response.headers["Retry-After"] == "5"


def _post_login(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", LOGIN, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert payload["code"] == response.status, payload
        return response.status
    finally:
        conn.close()


@pytest.fixture
def committed_user(app: Flask, redis: Redis) -> Iterator[str]:
    """A user another process can see (committed, not in a rolled-back test transaction)."""
    name = f"burst_{uuid.uuid4().hex[:8]}"
    with app.app_context():
        sync_roles()
        user = create_user(f"{name}@example.com", name, PASSWORD)
        database.session.commit()
        user_id = user.id
        database.session.remove()
    yield name
    with app.app_context():
        database.session.execute(sa.delete(User).where(User.id == user_id))
        database.session.commit()
        database.session.remove()


def test_the_account_limit_holds_across_processes_and_a_concurrent_burst(
    app: Flask, committed_user: str
) -> None:
    limits = {
        "RATE_LIMIT_LOGIN_ACCOUNT": "10/minute",
        "RATE_LIMIT_LOGIN_ACCOUNT_IP": "1000/minute",
        "RATE_LIMIT_LOGIN_IP": "1000/minute",
        "RATE_LIMIT_ANONYMOUS": "10000/minute",
    }
    database_url = app.extensions["botyard.settings"].database_url
    with running_gunicorn(database_url, WEB_CONCURRENCY="2", WEB_THREADS="16", **limits) as port:
        deep = b'{"login": "' + committed_user.encode() + b'", "password": ' + b"[" * 30000
        # The trick that switched a process to counting in memory: several times, so that
        # both workers see it.
        assert {_post_login(port, deep) for _ in range(6)} == {400}
        wrong = json.dumps({"login": committed_user, "password": "wrong-password"}).encode()
        with ThreadPoolExecutor(max_workers=30) as pool:
            statuses = list(pool.map(lambda _: _post_login(port, wrong), range(30)))
        # Ten guesses reached the password check (401); the other twenty were refused
        # before it, however the burst was spread over threads and processes.
        assert sorted(statuses) == [401] * 10 + [429] * 20, statuses
