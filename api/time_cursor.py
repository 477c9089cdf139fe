"""Cursors of lists ordered by (time, uuid): ``<microseconds since 1970>.<uuid hex>``.

Used by the data exports and the community lists: opaque to clients, exact to the
microsecond, and anything that is not one is a 422 naming ``cursor``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import marshmallow as ma

from models.errors import Invalid

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MESSAGE = "Not a cursor this list gave out."


def cursor_field() -> ma.fields.String:
    """The ``cursor`` query field: room for any time to 2100 and a uuid's 32 hex digits."""
    return ma.fields.String(
        validate=ma.validate.Length(min=3, max=64),
        metadata={"description": "next_cursor of the last page"},
    )


def encode(at: datetime, object_id: uuid.UUID) -> str:
    """The cursor naming the row at ``at`` with id ``object_id``."""
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{object_id.hex}"


def decode(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """(time, id) of ``cursor``; None for no cursor; :class:`Invalid` (422) for a bad one."""
    if cursor is None:
        return None
    try:
        micros, hex_id = cursor.split(".")
        if not micros.isdigit() or len(micros) > 16:
            raise ValueError(micros)
        return EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex=hex_id)
    except (ValueError, OverflowError) as exc:
        raise Invalid(MESSAGE, {"query": {"cursor": [MESSAGE]}}) from exc
