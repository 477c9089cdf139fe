"""Offset pagination for list endpoints (page numbers start at 1)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select

from models.db import session as db

T = TypeVar("T")


def page_of(stmt: Select[T], page: int, page_size: int) -> tuple[list[T], int]:
    """One page of ``stmt``'s rows and the total row count."""
    count_stmt: Select[Any] = select(func.count()).select_from(stmt.order_by(None).subquery())
    total = int(db.scalar(count_stmt) or 0)
    rows = db.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).all()
    return list(rows), total
