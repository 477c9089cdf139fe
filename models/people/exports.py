"""Data exports: asking for one, building it once, downloading it until it expires, purging.

An export moves queued -> running -> ready -> expired (or failed). At most one is queued
or running per user, and a user may ask for ``limit_per_day`` in any 24 hours. Building
is idempotent: a ready, expired or failed export is never rebuilt. The document itself
is written by :mod:`models.people.export_document`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update

from models.db import session as db
from models.errors import Conflict, NotFound, QuotaExceeded
from models.identity.quotas import lock_owner
from models.pagination import older_than
from models.people.export_document import build_gzip
from models.people.notifications import notify
from models.people.tables import DataExport
from models.retention import purge_rows

ACTIVE_EXPORT_STATUSES = ("queued", "running")
# An export queued or running this long lost its job (retries included): it is failed, so
# the user may ask again.
STUCK_AFTER = timedelta(hours=2)
# Rows of expired and failed exports are kept this long for the list, then deleted.
KEEP_ROWS = timedelta(days=30)


def request_export(user_id: uuid.UUID, now: datetime, limit_per_day: int) -> DataExport:
    """Add a queued export for ``user_id``.

    Raises :class:`Conflict` while another of theirs is queued or running, and
    :class:`QuotaExceeded` once they asked for ``limit_per_day`` in the last 24 hours.
    The user's row is locked first, so two concurrent requests cannot both pass.
    """
    lock_owner(user_id)
    active = db.scalar(
        select(DataExport.id)
        .where(DataExport.user_id == user_id, DataExport.status.in_(ACTIVE_EXPORT_STATUSES))
        .limit(1)
    )
    if active is not None:
        raise Conflict(f"Export {active} is still being prepared; wait for it to be ready.")
    recent = db.scalar(
        select(func.count())
        .select_from(DataExport)
        .where(DataExport.user_id == user_id, DataExport.created_at > now - timedelta(days=1))
    )
    if int(recent or 0) >= limit_per_day:
        raise QuotaExceeded(
            f"You asked for {limit_per_day} exports in the last 24 hours, the limit; "
            "download the last one or try again tomorrow."
        )
    export = DataExport(id=uuid.uuid4(), user_id=user_id, status="queued", created_at=now)
    db.add(export)
    db.flush()
    return export


def get_owned_export(user_id: uuid.UUID, export_id: uuid.UUID) -> DataExport:
    """The user's export; anyone else's is as unknown as a missing one (:class:`NotFound`)."""
    export = db.get(DataExport, export_id)
    if export is None or export.user_id != user_id:
        raise NotFound("No export with that id.")
    return export


def list_exports(
    user_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[DataExport]:
    """Up to ``limit`` of the user's exports, newest first, older than the ``before`` cursor."""
    stmt = (
        select(DataExport)
        .where(DataExport.user_id == user_id)
        .order_by(DataExport.created_at.desc(), DataExport.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(older_than(DataExport.created_at, DataExport.id, before))
    return list(db.scalars(stmt))


def is_downloadable(export: DataExport, now: datetime) -> bool:
    """Ready and not yet past its expiry at ``now``."""
    return export.status == "ready" and export.expires_at is not None and export.expires_at > now


def payload_of(export: DataExport) -> bytes:
    """The stored gzip bytes (the column is deferred: lists never load it)."""
    data = db.scalar(select(DataExport.payload).where(DataExport.id == export.id))
    if data is None:
        raise NotFound("That export has no file any more.")
    return data


def _lock(export_id: uuid.UUID) -> DataExport | None:
    return db.scalar(
        select(DataExport)
        .where(DataExport.id == export_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def start_build(export_id: uuid.UUID) -> uuid.UUID | None:
    """Mark the export running; its owner's id, or None when there is nothing to build.

    A running export is taken again: its previous attempt died. The caller commits,
    so the status is visible while the document is written.
    """
    export = _lock(export_id)
    if export is None or export.status not in ACTIVE_EXPORT_STATUSES:
        return None
    export.status = "running"
    return export.user_id


def finish_build(
    export_id: uuid.UUID, payload: bytes, now: datetime, ttl: timedelta
) -> DataExport | None:
    """Store the payload, mark the export ready until ``now + ttl`` and notify the owner.

    None (and nothing changed) when another attempt finished it first. The caller commits:
    the notification exists exactly when the export is ready.
    """
    export = _lock(export_id)
    if export is None or export.status != "running":
        return None
    export.payload = payload
    export.size_bytes = len(payload)
    export.status = "ready"
    export.ready_at = now
    export.expires_at = now + ttl
    export.error = None
    notify(
        export.user_id,
        "account.export_ready",
        {"export_id": str(export.id), "expires_at": export.expires_at.isoformat()},
    )
    db.flush()
    return export


def build(export_id: uuid.UUID, now: datetime, ttl: timedelta) -> DataExport | None:
    """Build the export start to end (two commits); None when there was nothing to do."""
    user_id = start_build(export_id)
    db.commit()
    if user_id is None:
        return None
    payload = build_gzip(user_id, now)
    export = finish_build(export_id, payload, now, ttl)
    db.commit()
    return export


def purge_exports(now: datetime) -> dict[str, int]:
    """Drop expired payloads, fail stuck builds, delete old finished rows; counts by action.

    Each step is one bounded statement or a batched purge; running it twice is harmless.
    """
    expired = db.execute(
        update(DataExport)
        .where(DataExport.status == "ready", DataExport.expires_at <= now)
        .values(status="expired", payload=None)
        .returning(DataExport.id)
    ).all()
    stuck = db.execute(
        update(DataExport)
        .where(
            DataExport.status.in_(ACTIVE_EXPORT_STATUSES),
            DataExport.created_at < now - STUCK_AFTER,
        )
        .values(status="failed", error="The export did not finish; ask for a new one.")
        .returning(DataExport.id)
    ).all()
    db.commit()
    old = and_(
        DataExport.status.in_(("expired", "failed")), DataExport.created_at < now - KEEP_ROWS
    )
    deleted = purge_rows(DataExport, old)
    return {"expired": len(expired), "failed": len(stuck), "deleted": deleted}
