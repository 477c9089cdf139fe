"""Bodies of the comment endpoints: plain text in, plain text out.

A body is text, never markup: it is stored as sent (trimmed, line ends as ``\\n``) and
returned the same way, in JSON, for clients to render as text.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema
from api.time_cursor import cursor_field
from models.community.comments import MAX_BODY, MAX_PAGE

ALLOWED_CONTROLS = frozenset("\n\t")
# Room for a long body's surrounding blanks, not for megabytes of them.
MAX_RAW = 2 * MAX_BODY


class PlainText(ma.fields.String):
    """Comment text: 1 to ``MAX_BODY`` characters once trimmed, no control characters.

    Newlines and tabs are text; ``\\r\\n`` and a lone ``\\r`` become ``\\n``; every other
    control character (NUL included) is refused, since clients would show them as
    nothing or as garbage.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > MAX_RAW:
            raise ma.ValidationError(f"At most {MAX_BODY} characters.")
        text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        if not text:
            raise ma.ValidationError("A comment cannot be empty.")
        if len(text) > MAX_BODY:
            raise ma.ValidationError(f"At most {MAX_BODY} characters.")
        if any(unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS for c in text):
            raise ma.ValidationError("Only newlines and tabs may be used as control characters.")
        return text


BODY_META = {"description": f"plain text, 1 to {MAX_BODY} characters once trimmed"}


class CommentIn(StrictSchema):
    """A new comment on a bot, or a reply to one of its top-level comments."""

    body = PlainText(required=True, metadata=BODY_META)
    parent_id = ma.fields.UUID(
        allow_none=True,
        metadata={"description": "a top-level comment of the same bot to reply to"},
    )


class CommentPatch(StrictSchema):
    """New text for my comment."""

    body = PlainText(required=True, metadata=BODY_META)


class CommentQuery(StrictSchema):
    """Page a bot's comments (or a comment's replies), oldest first."""

    cursor = cursor_field()
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PAGE))


class CommentAuthorOut(OutSchema):
    """Who wrote a comment."""

    username = ma.fields.String()


class CommentOut(OutSchema):
    """A comment; a deleted one kept for its replies has no body and no author."""

    id = ma.fields.UUID()
    bot_id = ma.fields.UUID()
    parent_id = ma.fields.UUID(allow_none=True, metadata={"description": "null at top level"})
    author = ma.fields.Nested(
        CommentAuthorOut, allow_none=True, metadata={"description": "null once deleted"}
    )
    body = ma.fields.String(
        allow_none=True, metadata={"description": "plain text (never HTML); null once deleted"}
    )
    deleted = ma.fields.Boolean(metadata={"description": "a placeholder kept for its replies"})
    hidden = ma.fields.Boolean(
        metadata={"description": "hidden by moderation: only its author sees it"}
    )
    mine = ma.fields.Boolean(metadata={"description": "whether I wrote it"})
    created_at = ma.fields.DateTime()
    edited_at = ma.fields.DateTime(allow_none=True)


class CommentThreadOut(CommentOut):
    """A top-level comment with its first replies and how many there are."""

    reply_count = ma.fields.Integer(metadata={"description": "replies I may see"})
    replies = ma.fields.List(
        ma.fields.Nested(CommentOut),
        metadata={"description": "the first 3, oldest first; the rest via listCommentReplies"},
    )


class CommentListOut(OutSchema):
    """A page of a bot's top-level comments, oldest first; ``next_cursor`` null at the end."""

    items = ma.fields.List(ma.fields.Nested(CommentThreadOut))
    next_cursor = ma.fields.String(allow_none=True)


class ReplyListOut(OutSchema):
    """A page of a comment's replies, oldest first; ``next_cursor`` null at the end."""

    items = ma.fields.List(ma.fields.Nested(CommentOut))
    next_cursor = ma.fields.String(allow_none=True)
