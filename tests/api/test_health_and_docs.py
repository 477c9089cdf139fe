"""Health probes and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import text


def test_live(client: FlaskClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json["status"] == "ok"


def test_ready_reports_each_check(client: FlaskClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    checks = response.json["checks"]
    assert set(checks) == {"postgres", "redis", "migrations"}
    assert all(c["ok"] for c in checks.values())
    assert checks["migrations"]["detail"] == "at head"


def test_ready_fails_when_schema_is_behind(client: FlaskClient, db: Any) -> None:
    db.execute(text("UPDATE alembic_version SET version_num = 'not-a-revision'"))
    db.commit()
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json["code"] == 503
    assert response.json["checks"]["migrations"]["ok"] is False
    assert response.json["checks"]["postgres"]["ok"] is True
    assert "migrations" in response.json["message"]


def test_openapi_declares_bearer_auth_and_errors(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]
    paths = spec["paths"]
    assert paths["/api/v1/auth/login"]["post"]["security"] == []
    assert paths["/api/v1/auth/register"]["post"]["security"] == []
    assert "security" not in paths["/api/v1/me"]["get"]  # inherits bearer from the root
    login = paths["/api/v1/auth/login"]["post"]
    assert "requestBody" in login
    assert {"200", "401", "422", "429", "default"} <= set(login["responses"])
    error_schema = spec["components"]["schemas"]["ErrorOut"]["properties"]
    assert {"code", "status", "message", "errors", "request_id"} <= set(error_schema)
    for path, operations in paths.items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert "default" in operation["responses"], f"{method.upper()} {path}"


def test_interactive_docs_page(client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert b"swagger" in response.data.lower()
