"""Request and response bodies of the activity feed and the admin audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, Timestamp
from models.people.activities import MAX_PAGE, ActivityEntry, ActivityFilter

# A verb ("bot.created") or a prefix ending in a dot ("bot."): lower-case dotted words.
VERB = ma.validate.Regexp(
    r"^[a-z_]+(\.[a-z_]+)*\.?$", error="Use a verb like bot.created, or a prefix like bot."
)


class ActivityQuery(StrictSchema):
    """Filter and page my activity, newest first."""

    verb = ma.fields.String(
        validate=[ma.validate.Length(min=1, max=48), VERB],
        metadata={"description": "a verb (exact), or a prefix ending in '.' such as 'bot.'"},
    )
    since = Timestamp(metadata={"description": "rows recorded at or after this time"})
    until = Timestamp(metadata={"description": "rows recorded before this time"})
    cursor = ma.fields.Integer(
        # Activity ids are bigints: a larger cursor would overflow in Postgres (a 500).
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "next_cursor of the last page"},
    )
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=MAX_PAGE))

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_kwargs: object) -> None:
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise ma.ValidationError("until must be after since.", "until")


class AuditQuery(ActivityQuery):
    """Filter and page the whole audit trail, newest first."""

    user = ma.fields.String(
        validate=ma.validate.Length(min=1, max=64),
        metadata={"description": "the actor: a user id or a username"},
    )
    object_type = ma.fields.String(validate=ma.validate.Length(min=1, max=32))
    object_id = ma.fields.String(validate=ma.validate.Length(min=1, max=64))


class ActorOut(OutSchema):
    """Who did it: ``username`` is "deleted user" once the account is erased."""

    id = ma.fields.UUID()
    username = ma.fields.String()


class ActivityOut(OutSchema):
    """One recorded action, with where it came from."""

    id = ma.fields.Integer()
    verb = ma.fields.String(metadata={"description": "dotted, e.g. bot.created (docs/accounts.md)"})
    actor = ma.fields.Nested(ActorOut, allow_none=True)
    object_type = ma.fields.String(allow_none=True)
    object_id = ma.fields.String(allow_none=True)
    data = ma.fields.Dict(metadata={"description": "the action's details (small, free-form)"})
    ip = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class ActivityListOut(OutSchema):
    """A page of activity, newest first; ``next_cursor`` is null on the last page."""

    rows = ma.fields.List(ma.fields.Nested(ActivityOut))
    next_cursor = ma.fields.Integer(allow_none=True)


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


def activity_filter(query: dict[str, Any], **fixed: Any) -> ActivityFilter:
    """The model filter for a loaded :class:`ActivityQuery` (or audit query) plus ``fixed``."""
    return ActivityFilter(
        verb=query.get("verb"),
        object_type=query.get("object_type"),
        object_id=query.get("object_id"),
        since=_time(query.get("since")),
        until=_time(query.get("until")),
        cursor=query.get("cursor"),
        **fixed,
    )


def activity_view(entry: ActivityEntry) -> dict[str, Any]:
    """The response body of one row."""
    row = entry.activity
    actor = (
        {"id": row.actor_id, "username": entry.actor_name}
        if row.actor_id is not None and entry.actor_name is not None
        else None
    )
    return {
        "id": row.id,
        "verb": row.verb,
        "actor": actor,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "data": row.data,
        "ip": str(row.ip) if row.ip is not None else None,
        "user_agent": row.user_agent,
        "created_at": row.created_at,
    }
