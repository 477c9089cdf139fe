"""CORS: which origins get the headers, what a browser may read, preflights outside the limits.

The browser itself is in tests/browser/test_cors.py; these check the headers with the
test client, on an app whose allowed origins are set explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.app import create_app
from api.cors import ALLOW_HEADERS, EXPOSE_HEADERS

WEB_APP = "http://app.example.test:3000"
IPV6_APP = "http://[::1]:5173"
OTHER = "http://evil.example.test"
INSTRUMENTS = "/api/v1/market/instruments"


@pytest.fixture(scope="module")
def cors_app(app: Flask) -> Flask:
    settings = app.extensions["botyard.settings"].replace(
        cors_origins=(WEB_APP, IPV6_APP), cors_max_age=321
    )
    return create_app(settings)


@pytest.fixture
def web(cors_app: Flask, db: Any, instruments: None) -> FlaskClient:
    return cors_app.test_client()


@pytest.fixture
def budget(cors_app: Flask) -> Iterator[None]:
    """An anonymous budget of two calls a minute (read at request time)."""
    original = cors_app.extensions["botyard.settings"]
    cors_app.extensions["botyard.settings"] = original.replace(rate_limit_anonymous="2/minute")
    yield
    cors_app.extensions["botyard.settings"] = original


def preflight(client: FlaskClient, path: str, method: str, headers: str, ip: str) -> Any:
    return client.options(
        path,
        headers={
            "Origin": WEB_APP,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        environ_base={"REMOTE_ADDR": ip},
    )


def cors_headers(response: Any) -> list[str]:
    return [name for name, _ in response.headers if name.startswith("Access-Control-")]


def listed(value: str | None) -> set[str]:
    return {part.strip().lower() for part in (value or "").split(",") if part.strip()}


def test_an_allowed_origin_gets_the_headers_and_may_read_what_clients_need(
    web: FlaskClient,
) -> None:
    response = web.get(INSTRUMENTS, headers={"Origin": WEB_APP})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert "Access-Control-Allow-Credentials" not in response.headers
    exposed = listed(response.headers["Access-Control-Expose-Headers"])
    assert exposed == {h.lower() for h in EXPOSE_HEADERS}
    assert {"location", "x-request-id", "retry-after", "etag", "x-ratelimit-remaining"} <= exposed
    # Every X-RateLimit-* header the limiter really sends is exposed.
    sent = {name.lower() for name, _ in response.headers if name.startswith("X-RateLimit-")}
    assert sent and sent <= exposed
    assert "Origin" in response.headers["Vary"]
    # Origins match exactly and case-insensitively; the IPv6 one is no regex either.
    upper = web.get(INSTRUMENTS, headers={"Origin": WEB_APP.upper()})
    assert upper.headers["Access-Control-Allow-Origin"] == WEB_APP.upper()
    v6 = web.get(INSTRUMENTS, headers={"Origin": IPV6_APP})
    assert v6.headers["Access-Control-Allow-Origin"] == IPV6_APP
    assert (
        "Access-Control-Allow-Origin"
        not in web.get(INSTRUMENTS, headers={"Origin": "http://:"}).headers
    )


@pytest.mark.parametrize(
    "origin", [OTHER, "http://app.example.test:3001", "https://app.example.test:3000", "null"]
)
def test_any_other_origin_gets_no_cors_headers(web: FlaskClient, origin: str) -> None:
    response = web.get(INSTRUMENTS, headers={"Origin": origin})
    assert response.status_code == 200  # the server answers; the browser withholds it
    assert cors_headers(response) == []
    assert "Origin" in response.headers["Vary"]


def test_a_call_without_origin_gets_no_cors_headers(web: FlaskClient) -> None:
    response = web.get(INSTRUMENTS)
    assert cors_headers(response) == []


def test_a_preflight_needs_no_token_and_allows_the_api_headers(web: FlaskClient) -> None:
    asked = "authorization, content-type, if-none-match, last-event-id, x-request-id"
    response = preflight(web, "/api/v1/backtests", "POST", asked, "10.30.0.1")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert listed(response.headers["Access-Control-Allow-Headers"]) == listed(asked)
    assert listed(asked) == {h.lower() for h in ALLOW_HEADERS}
    assert {"get", "post", "patch", "delete"} <= listed(
        response.headers["Access-Control-Allow-Methods"]
    )
    assert response.headers["Access-Control-Max-Age"] == "321"
    # A header the API does not take is left out, so the browser refuses that call.
    odd = preflight(web, "/api/v1/bots", "GET", "authorization, x-custom", "10.30.0.1")
    assert listed(odd.headers["Access-Control-Allow-Headers"]) == {"authorization"}


def test_preflights_spend_no_budget_and_pass_when_it_is_exhausted(
    web: FlaskClient, budget: None
) -> None:
    ip = "10.30.0.2"
    for _ in range(5):
        response = preflight(web, INSTRUMENTS, "GET", "authorization", ip)
        assert response.status_code == 200
        assert "X-RateLimit-Remaining" not in response.headers
    calls = [
        web.get(INSTRUMENTS, headers={"Origin": WEB_APP}, environ_base={"REMOTE_ADDR": ip})
        for _ in range(3)
    ]
    assert [c.status_code for c in calls] == [200, 200, 429]
    # The refusal carries the CORS headers, so the page can read its status and Retry-After.
    refused = calls[-1]
    assert refused.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json["code"] == 429
    again = preflight(web, "/api/v1/auth/login", "POST", "content-type", ip)
    assert again.status_code == 200
    assert again.headers["Access-Control-Allow-Origin"] == WEB_APP


def test_the_market_stream_carries_the_cors_headers(web: FlaskClient) -> None:
    response = web.get(
        "/api/v1/market/stream?symbols=BTC-USD", headers={"Origin": WEB_APP}, buffered=False
    )
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Access-Control-Allow-Origin"] == WEB_APP
        assert "last-event-id" not in listed(response.headers["Access-Control-Expose-Headers"])
    finally:
        response.close()


def test_a_wildcard_sends_a_star_and_never_reflects_the_origin(
    app: Flask, db: Any, instruments: None
) -> None:
    settings = app.extensions["botyard.settings"].replace(cors_origins=("*",))
    response = create_app(settings).test_client().get(INSTRUMENTS, headers={"Origin": OTHER})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
