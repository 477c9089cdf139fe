"""Structured logs carry the request id and never a password or token."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from logconfig import REDACTED, configure_logging, redact_secrets
from tests.helpers import PASSWORD, bearer

SECRET_PASSWORD = "Sup3r-Secret-Passw0rd!"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the root logger renders, through the app's own formatter."""
    root = logging.getLogger()
    app_handler = next(h for h in root.handlers if getattr(h, "_botyard", False))
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(app_handler.formatter)
    root.addHandler(handler)
    yield buffer
    root.removeHandler(handler)


def test_no_password_or_token_reaches_the_logs(
    client: FlaskClient, log_output: io.StringIO, db: Any
) -> None:
    client.post(
        "/api/v1/auth/register",
        json={"email": "quiet@example.com", "username": "quiet", "password": SECRET_PASSWORD},
    )
    tokens = client.post(
        "/api/v1/auth/login", json={"login": "quiet", "password": SECRET_PASSWORD}
    ).json
    client.post("/api/v1/auth/login", json={"login": "quiet", "password": SECRET_PASSWORD + "x"})
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).json
    client.get("/api/v1/me", headers=bearer(refreshed["access_token"]))
    client.get("/api/v1/me?token=" + refreshed["access_token"])
    # A careless log call with secrets in it is scrubbed too.
    logging.getLogger("careless").warning(
        "login attempt password=%s header=Bearer %s", SECRET_PASSWORD, tokens["access_token"]
    )

    output = log_output.getvalue()
    assert "request_id=" in output and "path=/api/v1/auth/login" in output
    for secret in (tokens["access_token"], tokens["refresh_token"], refreshed["access_token"]):
        assert secret not in output
        assert secret.split(".")[1] not in output  # not even the payload segment
    assert "Bearer [redacted]" in output
    assert SECRET_PASSWORD not in output
    assert "password=[redacted]" in output


def test_redaction_processor_blanks_secret_keys_and_jwts() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop"
    event = {
        "event": f"got {jwt_like}",
        "password": PASSWORD,
        "new_password": PASSWORD,
        "refresh_token": "x",
        "headers": {"Authorization": "Bearer abc", "Accept": "json"},
        "nested": [{"api_key": "k"}, "Bearer zzz", "reset with token=abc123 now"],
        "user": "alice",
    }
    out = redact_secrets(None, "info", dict(event))
    assert out["event"] == f"got {REDACTED}"
    assert out["password"] == out["new_password"] == out["refresh_token"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "Accept": "json"}
    assert out["nested"] == [
        {"api_key": REDACTED},
        f"Bearer {REDACTED}",
        f"reset with token={REDACTED} now",
    ]
    assert out["user"] == "alice"


def test_production_logs_are_json_lines_and_debug_is_off(app: Any, db: Any) -> None:
    test_settings = app.extensions["botyard.settings"]
    prod = test_settings.replace(env="production", log_json=True)
    try:
        prod_app = create_app(prod)
        assert prod_app.debug is False
        root = logging.getLogger()
        app_handler = next(h for h in root.handlers if getattr(h, "_botyard", False))
        buffer = io.StringIO()
        capture = logging.StreamHandler(buffer)
        capture.setFormatter(app_handler.formatter)
        root.addHandler(capture)
        try:
            prod_app.test_client().get("/health/live", headers={"X-Request-ID": "json-check"})
        finally:
            root.removeHandler(capture)
        lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
        request_lines = [line for line in lines if line.get("event") == "request"]
        assert request_lines and request_lines[0]["request_id"] == "json-check"
        assert request_lines[0]["status"] == 200 and request_lines[0]["level"] == "info"
    finally:
        configure_logging(test_settings.log_level, test_settings.log_json)
