"""``/health/live`` says the process answers; ``/health/ready`` checks what requests need."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import marshmallow as ma
import structlog
from alembic.script import ScriptDirectory
from flask import current_app, jsonify
from flask.views import MethodView
from sqlalchemy import text

from api.access import public
from api.errors import error_payload
from api.extensions import redis_client
from api.health import blp
from api.schemas import OutSchema, one_of
from models.db import session as db

log = structlog.get_logger(__name__)


class CheckOut(OutSchema):
    """One dependency's result."""

    ok = ma.fields.Boolean()
    ms = ma.fields.Float(metadata={"description": "How long the check took"})
    detail = ma.fields.String()


class HealthOut(OutSchema):
    """``status`` is "ok", and each dependency's check (none for liveness)."""

    status = ma.fields.String(**one_of(["ok"]))
    checks = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(CheckOut),
        metadata={"description": "postgres, redis, migrations (readiness only)"},
    )


class HealthFailureOut(HealthOut):
    """A dependency is failing: the error shape plus ``checks``."""

    code = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    message = ma.fields.String()
    request_id = ma.fields.String(allow_none=True)


def _migration_heads() -> set[str]:
    cached = current_app.extensions.get("botyard.migration_heads")
    if cached is None:
        config = current_app.extensions["migrate"].migrate.get_config()
        cached = set(ScriptDirectory.from_config(config).get_heads())
        current_app.extensions["botyard.migration_heads"] = cached
    return set(cached)


def _check_postgres() -> str:
    db.execute(text("SELECT 1"))
    return "reachable"


def _check_redis() -> str:
    redis_client().ping()
    return "reachable"


def _check_migrations() -> str:
    applied = set(db.scalars(text("SELECT version_num FROM alembic_version")))
    heads = _migration_heads()
    if applied != heads:
        raise RuntimeError(f"database at {sorted(applied)}, code expects {sorted(heads)}")
    return "at head"


def _run(check: Callable[[], str]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:
        db.rollback()
        # The full message stays in the log: it names hosts and ports, this endpoint is public.
        log.warning("health_check_failed", check=check.__name__, error=str(exc)[:500])
        detail, ok = f"{type(exc).__name__}", False
    return {"ok": ok, "ms": round((time.perf_counter() - started) * 1000, 2), "detail": detail}


@blp.route("/live")
class Live(MethodView):
    @public
    @blp.doc(operationId="getLiveness", security=[])
    @blp.response(200, HealthOut)
    def get(self) -> dict[str, Any]:
        """The process is up and answering."""
        return {"status": "ok", "checks": {}}


@blp.route("/ready")
class Ready(MethodView):
    @public
    @blp.doc(operationId="getReadiness", security=[])
    @blp.response(200, HealthOut)
    @blp.alt_response(503, schema=HealthFailureOut, description="A dependency is failing")
    def get(self) -> Any:
        """Postgres and Redis answer and the schema is at the migrations' head."""
        checks = {
            "postgres": _run(_check_postgres),
            "redis": _run(_check_redis),
            "migrations": _run(_check_migrations),
        }
        healthy = all(c["ok"] for c in checks.values())
        if healthy:
            return {"status": "ok", "checks": checks}
        failing = ", ".join(k for k, c in checks.items() if not c["ok"])
        # A Response passes the 200 schema by: the failure keeps the error shape's fields.
        response = jsonify({**error_payload(503, f"Not ready: {failing}."), "checks": checks})
        response.status_code = 503
        return response
