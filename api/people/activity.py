"""Recording what people do: ``track()`` is the one call views make.

FIRST CUT (the activity workstream replaces the body, not the signature): the row is
added to the request's session, so it is written by the view's own commit; call it
before that commit.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request

from models.people.activities import record


def _caller() -> uuid.UUID | None:
    verify_jwt_in_request(optional=True)
    identity = get_jwt_identity()
    return uuid.UUID(identity) if identity else None


def track(
    verb: str,
    *,
    object_type: str | None = None,
    object_id: str | uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    actor_id: uuid.UUID | None = None,
) -> None:
    """Record that the caller (or ``actor_id``) did ``verb`` to an object, from this request."""
    record(
        verb,
        actor_id or _caller(),
        object_type=object_type,
        object_id=object_id,
        data=data,
        ip=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
