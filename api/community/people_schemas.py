"""Request and response bodies of follows, blocks and the lists of people they make."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import marshmallow as ma

from api import time_cursor as cursors
from api.schemas import OutSchema, StrictSchema
from models.community.people import MAX_PAGE, PersonEntry

CURSOR_HELP = "next_cursor of the previous page"


class PeopleQuery(StrictSchema):
    """Page a list of people, newest relation first."""

    cursor = ma.fields.String(
        validate=ma.validate.Length(min=1, max=64), metadata={"description": CURSOR_HELP}
    )
    limit = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=MAX_PAGE))


class PersonOut(OutSchema):
    """Someone in a list: a private profile shows its username only."""

    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    profile_url = ma.fields.String(
        allow_none=True, metadata={"description": "null when the profile is private"}
    )
    since = ma.fields.DateTime(metadata={"description": "when the follow (or block) was made"})


class PeopleListOut(OutSchema):
    """A page of people, newest first; ``next_cursor`` is null on the last page."""

    items = ma.fields.List(ma.fields.Nested(PersonOut))
    next_cursor = ma.fields.String(allow_none=True)


class FollowStateOut(OutSchema):
    """Whether I follow the user now, and how many (listed) followers they have."""

    username = ma.fields.String()
    following = ma.fields.Boolean()
    followers = ma.fields.Integer()


class BlockStateOut(OutSchema):
    """Whether I block the user now."""

    username = ma.fields.String()
    blocked = ma.fields.Boolean()


def person_view(entry: PersonEntry) -> dict[str, Any]:
    """The response body of one listed person."""
    return {
        "username": entry.username,
        "display_name": entry.display_name,
        "profile_url": f"/api/v1/users/{entry.username}" if entry.profile_public else None,
        "since": entry.since,
    }


def encode_cursor(entry: PersonEntry) -> str:
    """The keyset of ``entry`` as an opaque string: when the relation began, the user's id."""
    return cursors.encode(entry.since, entry.user_id)


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The keyset in ``cursor``; :class:`Invalid` (422) for one this API never gave out."""
    return cursors.decode(cursor)
