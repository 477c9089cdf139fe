"""Comments on bots: plain text, one level of replies (docs/community.md#comments).

A comment is stored and returned as the text it was sent as; nothing here or in the API
reads it as markup. Who sees what:

- a comment hidden by moderation (``hidden_at``) is shown to its author only;
- a deleted top-level comment that still has replies stays as a placeholder (no body, no
  author) while one of its replies is shown; deleting a comment with no replies, or any
  reply, removes the row, and the last reply's removal takes its placeholder with it.

Replies lock their parent row (``FOR UPDATE``) and so does deleting it, so a reply cannot
land on a comment that is being removed, nor a removal miss a reply arriving.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from models.community.tables import Comment
from models.db import session as db
from models.errors import Conflict, DomainError, Invalid, NotFound
from models.identity.tables import User
from models.people.activities import DELETED_USER

MAX_BODY = 2000
MAX_PAGE = 100
# Replies sent with each top-level comment; the rest through GET /comments/{id}/replies.
EMBEDDED_REPLIES = 3
NO_COMMENT = "No comment with that id."
NO_PARENT = "Reply to a top-level comment of this bot."


class Refused(DomainError):
    """The caller may see the object but not do this to it (403)."""

    status = 403


@dataclass(frozen=True)
class Thread:
    """Replies of one top-level comment as a page shows them: the first few and how many."""

    first: list[Comment]
    count: int


def shown_to(viewer_id: uuid.UUID, comment: Any = Comment) -> ColumnElement[bool]:
    """SQL: ``comment`` (entity or alias) is shown to ``viewer_id``: not hidden, or theirs."""
    return or_(comment.hidden_at.is_(None), comment.author_id == viewer_id)


def _has_shown_reply(viewer_id: uuid.UUID) -> ColumnElement[bool]:
    reply = aliased(Comment)
    return exists(select(reply.id).where(reply.parent_id == Comment.id, shown_to(viewer_id, reply)))


def top_level_page(
    bot_id: uuid.UUID,
    viewer_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Comment]:
    """Up to ``limit`` top-level comments of the bot shown to the viewer, oldest first."""
    stmt = (
        select(Comment)
        .where(
            Comment.bot_id == bot_id,
            Comment.parent_id.is_(None),
            shown_to(viewer_id),
            or_(Comment.deleted_at.is_(None), _has_shown_reply(viewer_id)),
        )
        .order_by(Comment.created_at, Comment.id)
        .limit(min(limit, MAX_PAGE + 1))
    )
    if after is not None:
        at, comment_id = after
        stmt = stmt.where(
            or_(Comment.created_at > at, and_(Comment.created_at == at, Comment.id > comment_id))
        )
    return list(db.scalars(stmt))


def threads(parent_ids: list[uuid.UUID], viewer_id: uuid.UUID) -> dict[uuid.UUID, Thread]:
    """The first :data:`EMBEDDED_REPLIES` replies of each parent and their count, one query."""
    if not parent_ids:
        return {}
    ranked = (
        select(
            Comment.id,
            func.row_number()
            .over(partition_by=Comment.parent_id, order_by=(Comment.created_at, Comment.id))
            .label("n"),
            func.count().over(partition_by=Comment.parent_id).label("total"),
        )
        .where(Comment.parent_id.in_(parent_ids), shown_to(viewer_id))
        .subquery()
    )
    rows = db.execute(
        select(Comment, ranked.c.total)
        .join(ranked, ranked.c.id == Comment.id)
        .where(ranked.c.n <= EMBEDDED_REPLIES)
        .order_by(Comment.created_at, Comment.id)
    ).all()
    found: dict[uuid.UUID, Thread] = {}
    for reply, total in rows:
        parent_id: uuid.UUID = reply.parent_id  # never None: selected by parent
        thread = found.setdefault(parent_id, Thread([], int(total)))
        thread.first.append(reply)
    return found


def replies_page(
    parent_id: uuid.UUID,
    viewer_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Comment]:
    """Up to ``limit`` replies to ``parent_id`` shown to the viewer, oldest first."""
    stmt = (
        select(Comment)
        .where(Comment.parent_id == parent_id, shown_to(viewer_id))
        .order_by(Comment.created_at, Comment.id)
        .limit(min(limit, MAX_PAGE + 1))
    )
    if after is not None:
        at, comment_id = after
        stmt = stmt.where(
            or_(Comment.created_at > at, and_(Comment.created_at == at, Comment.id > comment_id))
        )
    return list(db.scalars(stmt))


def author_names(comments: list[Comment]) -> dict[uuid.UUID, str]:
    """The username of each author (``deleted user`` once erased), in one query."""
    ids = {c.author_id for c in comments if c.deleted_at is None}
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.username, User.erased_at).where(User.id.in_(ids)))
    return {user_id: DELETED_USER if erased else name for user_id, name, erased in rows}


def shown_comment(comment_id: uuid.UUID, viewer_id: uuid.UUID) -> Comment:
    """The comment if it is shown to the viewer and not deleted, else :class:`NotFound`.

    The caller still checks that the viewer may see the comment's bot.
    """
    comment = db.get(Comment, comment_id)
    if (
        comment is None
        or comment.deleted_at is not None
        or (comment.hidden_at is not None and comment.author_id != viewer_id)
    ):
        raise NotFound(NO_COMMENT)
    return comment


def locked_parent(bot_id: uuid.UUID, parent_id: uuid.UUID, viewer_id: uuid.UUID) -> Comment:
    """The top-level comment of ``bot_id`` a reply may go under, locked; else 422."""
    parent = db.scalar(select(Comment).where(Comment.id == parent_id).with_for_update())
    if (
        parent is None
        or parent.bot_id != bot_id
        or parent.parent_id is not None
        or parent.deleted_at is not None
        or (parent.hidden_at is not None and parent.author_id != viewer_id)
    ):
        raise Invalid(NO_PARENT, {"json": {"parent_id": [NO_PARENT]}})
    return parent


def create_comment(
    bot_id: uuid.UUID, author_id: uuid.UUID, body: str, parent: Comment | None
) -> Comment:
    """Add a comment (a reply when ``parent`` is given); flushed, the caller commits."""
    comment = Comment(
        bot_id=bot_id,
        author_id=author_id,
        parent_id=parent.id if parent is not None else None,
        body=body,
        # The clock, not the transaction's now(): the thread's order is the order written.
        created_at=datetime.now(UTC),
    )
    db.add(comment)
    db.flush()
    return comment


def edit_comment(comment: Comment, body: str) -> Comment:
    """Replace the text of a comment; a hidden one stays as moderation left it (409)."""
    if comment.hidden_at is not None:
        raise Conflict("A hidden comment cannot be edited.")
    if body != comment.body:
        comment.body = body
        comment.edited_at = datetime.now(UTC)
    db.flush()
    return comment


def delete_comment(comment: Comment) -> None:
    """Delete a comment: a placeholder while it has replies, else the row (see the module)."""
    if comment.parent_id is None:
        db.scalar(select(Comment.id).where(Comment.id == comment.id).with_for_update())
        has_replies = db.scalar(select(exists().where(Comment.parent_id == comment.id)))
        if has_replies:
            comment.deleted_at, comment.body, comment.edited_at = datetime.now(UTC), "", None
            db.flush()
            return
        db.delete(comment)
        db.flush()
        return
    parent = db.scalar(select(Comment).where(Comment.id == comment.parent_id).with_for_update())
    db.delete(comment)
    db.flush()
    if parent is not None and parent.deleted_at is not None:
        left = db.scalar(select(exists().where(Comment.parent_id == parent.id)))
        if not left:
            db.delete(parent)
            db.flush()
