"""The one page envelope and the one cursor helper of every list endpoint.

Page-numbered lists answer ``{"items", "page", "page_size", "total"}``, described by
one schema per item type made by :func:`page_schema` (components ``BotPage``,
``TradePage``, ...). Cursor-paged lists fetch one row more than they answer to know
whether another page follows: :func:`cursor_page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import marshmallow as ma
from sqlalchemy import Select

from api.schemas import OutSchema
from models.pagination import page_of

T = TypeVar("T")
C = TypeVar("C")


class PageOut(OutSchema):
    """A page of a list: ``page`` from 1, ``page_size`` asked for, ``total`` items in all."""

    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    total = ma.fields.Integer(metadata={"description": "Items in the whole list"})


_PAGE_SCHEMAS: dict[type[ma.Schema], type[PageOut]] = {}


def page_schema(item: type[ma.Schema], name: str) -> type[PageOut]:
    """The page schema of ``item`` (an OpenAPI component called ``name``), made once."""
    existing = _PAGE_SCHEMAS.get(item)
    if existing is not None:
        if existing.__name__ != name:
            raise ValueError(f"{item.__name__} pages are already called {existing.__name__}")
        return existing
    schema = type(
        name,
        (PageOut,),
        {
            "__doc__": f"A page of {item.__name__} items.",
            "__module__": __name__,
            "items": ma.fields.List(ma.fields.Nested(item)),
        },
    )
    _PAGE_SCHEMAS[item] = schema
    return schema


def page_body(items: Sequence[Any], total: int, query: dict[str, Any]) -> dict[str, Any]:
    """The page envelope of ``items`` for a :class:`~api.schemas.PageQuery` ``query``."""
    return {
        "items": list(items),
        "page": query["page"],
        "page_size": query["page_size"],
        "total": total,
    }


def paged(
    stmt: Select[Any], query: dict[str, Any], view: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """The page of ``stmt`` that ``query`` asks for, each row through ``view`` if given."""
    items, total = page_of(stmt, query["page"], query["page_size"])
    return page_body([view(item) for item in items] if view else items, total, query)


def cursor_page(
    fetch: Callable[[int], Sequence[T]],
    limit: int,
    cursor: Callable[[T], C],
    *,
    from_next_row: bool = False,
) -> tuple[list[T], C | None]:
    """Up to ``limit`` rows from ``fetch(n)`` and the cursor of the next page (None if last).

    The cursor is ``cursor(row)`` of the page's last row ("after this one"), or with
    ``from_next_row`` of the first row of the next page ("from this one").
    """
    rows = list(fetch(limit + 1))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], cursor(rows[limit] if from_next_row else rows[limit - 1])
