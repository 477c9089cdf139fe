"""What a moderator sees of a reported object: a short summary, hidden or not.

Summaries are loaded for a whole page of reports at once (one query per kind of target),
so the queue costs the same few queries at any page size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from models.bots.bots import Bot
from models.community.tables import Comment, Report
from models.db import session as db
from models.identity.tables import User


@dataclass(frozen=True)
class TargetSummary:
    """A reported bot, comment or user as the queue shows it.

    ``user_id``/``username`` are the bot's owner, the comment's author or the user;
    ``name`` is the bot's name (or the username), ``body`` the comment's text.
    """

    user_id: uuid.UUID
    username: str
    name: str | None = None
    bot_id: uuid.UUID | None = None
    body: str | None = None
    visibility: str | None = None
    hidden_at: datetime | None = None
    deleted_at: datetime | None = None


Key = tuple[str, uuid.UUID]


def _ids(reports: list[Report], target_type: str) -> set[uuid.UUID]:
    return {r.target_id for r in reports if r.target_type == target_type}


def _bots(ids: set[uuid.UUID]) -> dict[Key, TargetSummary]:
    if not ids:
        return {}
    rows = db.execute(
        select(Bot, User.username).join(User, User.id == Bot.owner_id).where(Bot.id.in_(ids))
    )
    return {
        ("bot", bot.id): TargetSummary(
            user_id=bot.owner_id,
            username=username,
            name=bot.name,
            bot_id=bot.id,
            visibility=bot.visibility,
            hidden_at=bot.hidden_at,
        )
        for bot, username in rows
    }


def _comments(ids: set[uuid.UUID]) -> dict[Key, TargetSummary]:
    if not ids:
        return {}
    rows = db.execute(
        select(Comment, User.username)
        .join(User, User.id == Comment.author_id)
        .where(Comment.id.in_(ids))
    )
    return {
        ("comment", comment.id): TargetSummary(
            user_id=comment.author_id,
            username=username,
            bot_id=comment.bot_id,
            body=comment.body,
            hidden_at=comment.hidden_at,
            deleted_at=comment.deleted_at,
        )
        for comment, username in rows
    }


def _users(ids: set[uuid.UUID]) -> dict[Key, TargetSummary]:
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {
        ("user", user_id): TargetSummary(user_id=user_id, username=username, name=username)
        for user_id, username in rows
    }


def target_summaries(reports: list[Report]) -> dict[Key, TargetSummary]:
    """The summary of each target of ``reports`` that still exists, by (type, id)."""
    return {
        **_bots(_ids(reports, "bot")),
        **_comments(_ids(reports, "comment")),
        **_users(_ids(reports, "user")),
    }


def usernames(ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The usernames of ``ids`` (reporters, moderators) that still exist."""
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {user_id: username for user_id, username in rows}
