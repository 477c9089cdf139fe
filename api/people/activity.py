"""Recording what people do: :func:`track` is the one call views make.

``track()`` only stages a row on ``flask.g``; the rows are written when the request
ends (teardown), in their own short transaction on a separate session, so recording
never holds up the view's work and never turns its response into an error. The rule
(docs/accounts.md, "Activity and audit"):

- a staged row is written only when the response's status is below 400: a request
  that failed or rolled back its own work does not record an action that did not happen;
- verbs in :data:`ATTEMPTS` (``auth.login_failed``) are written whatever the status,
  since the attempt is the thing recorded (a failed login never commits anything);
- a write the database refuses is logged (``activity_not_recorded``: the verbs and the
  error type, never the data) and dropped;
- ``ACTIVITY_TRACKING=0`` turns ``track()`` into a no-op (the benchmark's baseline).

Before writing, the request's own session is rolled back (everything it meant to keep
is committed by then), so a request uses one database connection at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from flask import Flask, Response, g, request
from flask_jwt_extended import get_jwt_identity
from sqlalchemy import text

from api.extensions import settings
from models.db import SessionFactory
from models.db import session as db
from models.people.activities import record

log = structlog.get_logger(__name__)

# Verbs recorded even when the request answers with an error.
ATTEMPTS = frozenset({"auth.login_failed"})
_STAGED = "botyard_activity_staged"
_STATUS = "botyard_activity_status"


@dataclass(frozen=True)
class Staged:
    """One row waiting for the end of the request."""

    verb: str
    actor_id: uuid.UUID | None
    object_type: str | None
    object_id: str | None
    data: dict[str, Any]
    ip: str | None
    user_agent: str | None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def _caller() -> uuid.UUID | None:
    """The verified token's user, if the view verified one (never raises)."""
    try:
        identity = get_jwt_identity()
        return uuid.UUID(str(identity)) if identity else None
    except (RuntimeError, ValueError):  # no token verified in this request, or a foreign id
        return None


def track(
    verb: str,
    *,
    object_type: str | None = None,
    object_id: str | uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> None:
    """Record that the caller (or ``actor_id``) did ``verb`` to an object, from this request.

    Staged now, written after the response (see the module's rule). Never raises.
    """
    try:
        if not settings().activity_tracking:
            return
        staged: list[Staged] = g.setdefault(_STAGED, [])
        staged.append(
            Staged(
                verb=verb,
                actor_id=actor_id or _caller(),
                object_type=object_type,
                object_id=str(object_id) if object_id is not None else None,
                data=dict(data or {}),
                ip=request.remote_addr,
                user_agent=request.headers.get("User-Agent"),
            )
        )
    except Exception as exc:  # recording must never fail the request it describes
        log.warning("activity_not_staged", verb=verb, error_type=type(exc).__name__)


def _note_status(response: Response) -> Response:
    """after_request: remember the status the request answered with."""
    if g.get(_STAGED):
        setattr(g, _STATUS, response.status_code)
    return response


def _to_write(staged: list[Staged], status: int | None) -> list[Staged]:
    """The staged rows the write rule keeps for a response with ``status``."""
    succeeded = status is not None and status < 400
    return [row for row in staged if succeeded or row.verb in ATTEMPTS]


def write_staged(_exc: BaseException | None = None) -> None:
    """teardown_request: write this request's rows in their own transaction.

    Runs for every request (also when an app context spans several, as in tests) and
    takes the staged rows off ``g`` first, so none can leak into the next request.
    """
    staged: list[Staged] = g.pop(_STAGED, None) or []
    status: int | None = g.pop(_STATUS, None)
    rows = _to_write(staged, status)
    if not rows:
        return
    try:
        db.rollback()  # end the request's transaction: its connection goes back first
    except Exception as exc:
        log.warning("request_session_not_ended", error_type=type(exc).__name__)
    session = SessionFactory()
    try:
        # The row need not wait for its WAL flush (the view's own commit did): a Postgres
        # crash may lose the last moments of activity, never the actions themselves.
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        for row in rows:
            record(
                row.verb,
                row.actor_id,
                object_type=row.object_type,
                object_id=row.object_id,
                data=row.data,
                ip=row.ip,
                user_agent=row.user_agent,
                created_at=row.created_at,
                session=session,
            )
        session.commit()
    except Exception as exc:
        log.warning(
            "activity_not_recorded",
            verbs=[row.verb for row in rows],
            error_type=type(exc).__name__,
        )
    finally:
        try:
            session.close()  # rolls back what the failed write left
        except Exception as exc:
            log.warning("activity_session_not_closed", error_type=type(exc).__name__)


def init_activity(app: Flask) -> None:
    """Install the hooks that write what :func:`track` staged."""
    app.after_request(_note_status)
    app.teardown_request(write_staged)
