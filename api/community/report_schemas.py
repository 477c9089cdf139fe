"""Request and response bodies of reports (``POST /reports``) and the moderation queue."""

from __future__ import annotations

import unicodedata
from typing import Any

import marshmallow as ma

from api.people.activity_schemas import ActorOut
from api.schemas import OutSchema, StrictSchema, one_of
from models.community.reports import REPORT_REASONS
from models.community.tables import REPORT_STATUSES, REPORT_TARGETS

DETAILS_MAX = 2000
NOTE_MAX = 1000
QUEUE_PAGE_MAX = 100


def no_control_characters(value: str) -> None:
    """Plain text: line breaks and tabs, but no other control characters."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise ma.ValidationError("Control characters are not allowed.")


def text_field(maximum: int, **kwargs: Any) -> ma.fields.String:
    """A bounded plain-text field (trimmed before use by the views' schemas)."""
    return ma.fields.String(
        validate=[ma.validate.Length(min=1, max=maximum), no_control_characters], **kwargs
    )


class ReportIn(StrictSchema):
    """What is reported, and why."""

    target_type = ma.fields.String(required=True, **one_of(REPORT_TARGETS))
    target_id = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=64),
        metadata={
            "description": "The bot's or comment's id; for a user, their id or their username"
        },
    )
    reason = ma.fields.String(required=True, **one_of(REPORT_REASONS))
    details = text_field(
        DETAILS_MAX,
        allow_none=True,
        load_default=None,
        metadata={"description": f"What a moderator should know (at most {DETAILS_MAX})"},
    )

    @ma.post_load
    def _trim(self, data: dict[str, Any], **_kwargs: object) -> dict[str, Any]:
        details = (data.get("details") or "").strip()
        data["details"] = details or None
        return data


class ReportOut(OutSchema):
    """A report as its reporter sees it."""

    id = ma.fields.UUID()
    target_type = ma.fields.String(**one_of(REPORT_TARGETS))
    target_id = ma.fields.UUID(metadata={"description": "For a user: their id"})
    reason = ma.fields.String(**one_of(REPORT_REASONS))
    details = ma.fields.String(allow_none=True)
    status = ma.fields.String(**one_of(REPORT_STATUSES))
    created_at = ma.fields.DateTime()


class ReportQueueQuery(StrictSchema):
    """Filter and page the moderation queue (oldest first)."""

    status = ma.fields.String(load_default="open", **one_of(REPORT_STATUSES))
    target_type = ma.fields.String(**one_of(REPORT_TARGETS))
    cursor = ma.fields.String(
        validate=ma.validate.Length(min=1, max=100),
        metadata={"description": "next_cursor of the last page"},
    )
    limit = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=QUEUE_PAGE_MAX)
    )


class ReportTargetOut(OutSchema):
    """The reported object as a moderator sees it (hidden or not).

    ``user_id``/``username``: the bot's owner, the comment's author, or the user.
    """

    user_id = ma.fields.UUID()
    username = ma.fields.String()
    name = ma.fields.String(allow_none=True, metadata={"description": "Bot name or username"})
    bot_id = ma.fields.UUID(allow_none=True, metadata={"description": "The bot, or the comment's"})
    body = ma.fields.String(allow_none=True, metadata={"description": "A comment's text"})
    visibility = ma.fields.String(allow_none=True, metadata={"description": "A bot's"})
    hidden_at = ma.fields.DateTime(allow_none=True)
    deleted_at = ma.fields.DateTime(allow_none=True, metadata={"description": "A comment's"})
    open_reports = ma.fields.Integer(metadata={"description": "Open reports of it, by anyone"})


class ModerationReportOut(ReportOut):
    """A report in the queue: who made it, who closed it, and what it is about."""

    reporter = ma.fields.Nested(ActorOut, allow_none=True)
    resolved_by = ma.fields.Nested(ActorOut, allow_none=True)
    resolved_at = ma.fields.DateTime(allow_none=True)
    resolution = ma.fields.String(allow_none=True, metadata={"description": "The closing note"})
    target = ma.fields.Nested(
        ReportTargetOut, allow_none=True, metadata={"description": "Null once it is deleted"}
    )


class ReportQueueOut(OutSchema):
    """A page of the queue; pass ``next_cursor`` as ``cursor`` for the next (null: the last)."""

    items = ma.fields.List(ma.fields.Nested(ModerationReportOut))
    next_cursor = ma.fields.String(allow_none=True)


class ReportDismissIn(StrictSchema):
    """Why the report is dismissed (kept with it, shown to moderators)."""

    note = text_field(NOTE_MAX, required=True)


class ReportResolveIn(ReportDismissIn):
    """How the report was resolved; ``hide`` also hides the reported bot or comment."""

    hide = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Hide the reported bot or comment in the same call"},
    )


class HideIn(StrictSchema):
    """Why it is hidden: the owner is told this reason."""

    reason = text_field(NOTE_MAX, required=True)


class RestoreIn(StrictSchema):
    """Why it is shown again (kept in the audit trail)."""

    reason = text_field(NOTE_MAX, allow_none=True, load_default=None)


class ModeratedOut(OutSchema):
    """A bot or comment after a hide or restore; ``changed`` is false when it already was."""

    object_type = ma.fields.String(**one_of(("bot", "comment")))
    object_id = ma.fields.UUID()
    bot_id = ma.fields.UUID(metadata={"description": "The bot, or the comment's"})
    hidden = ma.fields.Boolean()
    hidden_at = ma.fields.DateTime(allow_none=True)
    changed = ma.fields.Boolean()
