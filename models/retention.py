"""Deleting rows in batches: one purge that every retention job and the account erasure use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, delete, select, tuple_

from models.db import session as db

PURGE_BATCH = 10_000
PURGE_MAX_BATCHES = 100


def purge_rows(
    target: Any,
    expired: ColumnElement[bool],
    batch: int = PURGE_BATCH,
    max_batches: int | None = PURGE_MAX_BATCHES,
) -> int:
    """Delete ``target``'s rows matching ``expired``, ``batch`` rows per committed statement.

    ``target`` is a mapped class or a ``Table``; its primary key (one column or several)
    picks each batch. Batches keep a large purge from holding one long transaction and its
    locks; at most ``max_batches`` run per call (None: until none match), so a backlog is
    worked off over several scheduled passes. Safe to run twice. Returns how many rows went.
    """
    table: Table = target if isinstance(target, Table) else target.__table__
    key = list(table.primary_key.columns)
    removed, batches = 0, 0
    while max_batches is None or batches < max_batches:
        victims = select(*key).where(expired).limit(batch)
        if len(key) == 1:
            stmt = delete(table).where(key[0].in_(victims.scalar_subquery()))
        else:
            stmt = delete(table).where(tuple_(*key).in_(victims))
        count = len(db.execute(stmt.returning(*key)).all())
        db.commit()
        removed += count
        batches += 1
        if count < batch:
            break
    return removed
