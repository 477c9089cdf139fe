"""One error shape for every failure, and the request id on every response."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api.access import public
from api.app import create_app

SHAPE = {"code", "status", "message", "request_id"}


def assert_error(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    body = response.json
    assert set(body) >= SHAPE, body
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return dict(body)


def test_not_found(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404)


def test_method_not_allowed(client: FlaskClient) -> None:
    assert_error(client.delete("/api/v1/auth/login"), 405)


def test_invalid_json_is_400(client: FlaskClient) -> None:
    body = assert_error(
        client.post("/api/v1/auth/login", data="{nope", content_type="application/json"), 400
    )
    assert body["errors"]


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    body = assert_error(
        client.post("/api/v1/auth/login", data="login=a&password=b", content_type="text/plain"), 415
    )
    assert "application/json" in body["message"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    huge = {"login": "x" * (70 * 1024), "password": "y"}
    assert_error(client.post("/api/v1/auth/login", json=huge), 413)


def test_validation_is_422_with_field_errors(client: FlaskClient) -> None:
    body = assert_error(client.post("/api/v1/auth/login", json={}), 422)
    assert set(body["errors"]["json"]) == {"login", "password"}


def test_json_array_body_is_422(client: FlaskClient) -> None:
    assert_error(client.post("/api/v1/auth/login", json=["login", "password"]), 422)


def test_unhandled_exception_is_a_500_without_internals(app: Flask, db: Any) -> None:
    crash_app = create_app(app.extensions["botyard.settings"])

    @public
    def explode() -> str:
        raise RuntimeError("secret internal detail")

    crash_app.add_url_rule("/__explode__", "explode", explode)
    body = assert_error(crash_app.test_client().get("/__explode__"), 500)
    assert "secret internal detail" not in str(body)


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    given = client.get("/health/live", headers={"X-Request-ID": "abc-123.trace"})
    assert given.headers["X-Request-ID"] == "abc-123.trace"
    made = client.get("/health/live")
    assert len(made.headers["X-Request-ID"]) == 32
    hostile = client.get("/health/live", headers={"X-Request-ID": "bad id\twith <stuff>"})
    assert hostile.headers["X-Request-ID"] != "bad id\twith <stuff>"


@pytest.mark.parametrize("path", ["/api/v1/admin/users", "/api/v1/me"])
def test_auth_errors_use_the_shape(client: FlaskClient, path: str) -> None:
    assert_error(client.get(path), 401)
    assert_error(client.get(path, headers={"Authorization": "Bearer not.a.jwt"}), 401)
    assert_error(client.get(path, headers={"Authorization": "Basic Zm9vOmJhcg=="}), 401)
