"""Activity records: who did what to which object, from where.

:func:`record` adds a row to a session: the request's recorder (api/people/activity.py)
passes its own short-lived session, written after the request; a job passes nothing
and the row joins the job's own transaction. :func:`activity_page` reads the feed and
the audit trail; :func:`purge_before` is the retention job's delete.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db import session as db
from models.identity import names
from models.identity.tables import User
from models.people.tables import Activity
from models.retention import purge_rows

MAX_USER_AGENT = 256
MAX_PAGE = 200
DELETED_USER = "deleted user"


def record(
    verb: str,
    actor_id: uuid.UUID | None,
    *,
    object_type: str | None = None,
    object_id: str | uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    created_at: datetime | None = None,
    session: Session | None = None,
) -> Activity:
    """Add one activity row to ``session`` (default: the current one); not committed.

    ``user_agent`` is cut to ``MAX_USER_AGENT`` characters; ``created_at`` defaults to now.
    """
    row = Activity(
        actor_id=actor_id,
        verb=verb,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        data=data or {},
        ip=_inet(ip),
        user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
        created_at=created_at or datetime.now(UTC),
    )
    (session or db()).add(row)
    return row


def _inet(ip: str | None) -> str | None:
    """``ip`` if it is an IP address (the column is ``inet``), else None."""
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


@dataclass(frozen=True)
class ActivityFilter:
    """What a feed or audit query keeps; every field optional.

    ``verb`` ending in ``.`` is a prefix (``bot.`` = every bot verb), else exact.
    ``since`` is inclusive, ``until`` exclusive; ``cursor`` keeps ids below it.
    """

    actor_id: uuid.UUID | None = None
    verb: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: int | None = None


@dataclass(frozen=True)
class ActivityEntry:
    """A row with its actor's name (``"deleted user"`` once the account is erased)."""

    activity: Activity
    actor_name: str | None


def activity_page(where: ActivityFilter, limit: int) -> list[ActivityEntry]:
    """Rows matching ``where``, newest (highest id) first, at most ``limit`` (keyset paging)."""
    stmt = (
        select(Activity, User.username, User.erased_at)
        .outerjoin(User, User.id == Activity.actor_id)
        .order_by(Activity.id.desc())
        .limit(min(limit, MAX_PAGE + 1))
    )
    if where.actor_id is not None:
        stmt = stmt.where(Activity.actor_id == where.actor_id)
    if where.verb is not None:
        if where.verb.endswith("."):
            stmt = stmt.where(Activity.verb.startswith(where.verb, autoescape=True))
        else:
            stmt = stmt.where(Activity.verb == where.verb)
    if where.object_type is not None:
        stmt = stmt.where(Activity.object_type == where.object_type)
    if where.object_id is not None:
        stmt = stmt.where(Activity.object_id == where.object_id)
    if where.since is not None:
        stmt = stmt.where(Activity.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(Activity.created_at < where.until)
    if where.cursor is not None:
        stmt = stmt.where(Activity.id < where.cursor)
    return [
        ActivityEntry(row, None if name is None else DELETED_USER if erased else name)
        for row, name, erased in db.execute(stmt).all()
    ]


def user_id_for(user: str) -> uuid.UUID | None:
    """The id of the account named by ``user`` (a uuid or a username), or None."""
    try:
        return uuid.UUID(user)
    except ValueError:
        pass
    if "\x00" in user:
        return None
    found: uuid.UUID | None = db.scalar(
        select(User.id).where(User.username_key == names.username_key(user))
    )
    return found


def purge_before(cutoff: datetime, batch: int, max_batches: int) -> int:
    """Delete activity rows created before ``cutoff``, in committed batches; returns the count."""
    return purge_rows(Activity, Activity.created_at < cutoff, batch, max_batches)
