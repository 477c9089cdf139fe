"""Pagination for list endpoints: offset pages (numbers start at 1) and newest-first keysets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select

from models.db import session as db

T = TypeVar("T")


def page_of(stmt: Select[T], page: int, page_size: int) -> tuple[list[T], int]:
    """One page of ``stmt``'s rows and the total row count."""
    count_stmt: Select[Any] = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = int(db.scalar(count_stmt) or 0)
    rows = db.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).all()
    return list(rows), total


def older_than(
    at_column: Any, id_column: Any, cursor: tuple[datetime, uuid.UUID]
) -> ColumnElement[bool]:
    """SQL: the row comes after ``cursor`` in (time, id) descending order.

    For newest-first lists ordered by ``at_column DESC, id_column DESC`` and paged by the
    (time, id) of the last row shown (api/time_cursor.py encodes such cursors).
    """
    at, last_id = cursor
    return or_(at_column < at, and_(at_column == at, id_column < last_id))
