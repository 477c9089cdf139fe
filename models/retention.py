"""Deleting expired rows: one batched purge that every retention job uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, select

from models.db import session as db

PURGE_BATCH = 10_000
PURGE_MAX_BATCHES = 100


def purge_rows(
    model: Any,
    expired: ColumnElement[bool],
    batch: int = PURGE_BATCH,
    max_batches: int = PURGE_MAX_BATCHES,
) -> int:
    """Delete ``model`` rows matching ``expired``, ``batch`` rows per committed statement.

    Batches keep a large purge from holding one long transaction and its locks; at most
    ``max_batches`` run per call, so a backlog is worked off over several scheduled passes.
    ``model`` needs an ``id`` primary key. Safe to run twice. Returns how many rows went.
    """
    removed = 0
    for _ in range(max_batches):
        victims = select(model.id).where(expired).limit(batch).scalar_subquery()
        result = db.execute(delete(model).where(model.id.in_(victims)).returning(model.id))
        count = len(result.all())
        db.commit()
        removed += count
        if count < batch:
            break
    return removed
