"""Schemas of my in-app notifications."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of
from models.people.events import EVENTS
from models.people.notifications import MAX_PAGE


class NotificationQuery(StrictSchema):
    """Filter and page my notifications (newest first)."""

    unread = ma.fields.Boolean(
        metadata={"description": "true: only unread ones; false: only read ones; absent: all"}
    )
    cursor = ma.fields.Integer(
        # Notification ids are bigints: a larger cursor would overflow in Postgres (a 500).
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "next_cursor of the last page"},
    )
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PAGE))


class NotificationOut(OutSchema):
    """One in-app notification; ``data`` depends on ``event`` (docs/accounts.md)."""

    id = ma.fields.Integer()
    event = ma.fields.String(**one_of(EVENTS, {name: name.replace(".", "_") for name in EVENTS}))
    data = ma.fields.Dict(keys=ma.fields.String(), metadata={"description": "The event's facts"})
    created_at = ma.fields.DateTime()
    read_at = ma.fields.DateTime(allow_none=True)


class NotificationListOut(OutSchema):
    """A page of notifications, newest first; ``next_cursor`` is null on the last page."""

    rows = ma.fields.List(ma.fields.Nested(NotificationOut))
    next_cursor = ma.fields.Integer(allow_none=True)


class UnreadCountOut(OutSchema):
    """How many of my in-app notifications are unread."""

    unread = ma.fields.Integer()


class MarkedReadOut(OutSchema):
    """How many notifications this call marked read (0 when all were read already)."""

    marked = ma.fields.Integer()
