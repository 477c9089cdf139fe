"""Activity records: who did what to which object, from where.

:func:`record` adds a row to the caller's session; the API's recorder
(api/people/activity.py) decides when that session commits, so recording never
fails or holds up the request it describes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from models.db import session as db
from models.people.tables import Activity

MAX_USER_AGENT = 256


def record(
    verb: str,
    actor_id: uuid.UUID | None,
    *,
    object_type: str | None = None,
    object_id: str | uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Activity:
    """Add one activity row to the current session (not flushed, not committed)."""
    row = Activity(
        actor_id=actor_id,
        verb=verb,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        data=data or {},
        ip=ip,
        user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
        created_at=datetime.now(UTC),
    )
    db.add(row)
    return row
