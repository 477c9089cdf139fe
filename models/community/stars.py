"""Stars: a user's bookmark and vote on a bot (docs/community.md#stars).

One row per (bot, user), inserted with ``ON CONFLICT DO NOTHING``: starring twice is
starring once, and two requests racing cannot make two rows. The count is never stored;
it is the number of rows, counted when read, so concurrent stars and unstars cannot
leave it wrong.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from models.bots.bots import Bot
from models.community.tables import BotStar
from models.community.visible_bots import listed_to
from models.db import session as db
from models.pagination import older_than

MAX_PAGE = 100


def star(bot_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Star ``bot_id`` for ``user_id`` (nothing if it already is). The caller checks visibility."""
    # The clock, not the transaction's now(): stars made in one transaction still order.
    db.execute(
        insert(BotStar)
        .values(bot_id=bot_id, user_id=user_id, created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=[BotStar.bot_id, BotStar.user_id])
    )


def unstar(bot_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Remove ``user_id``'s star from ``bot_id`` (nothing if there is none)."""
    db.execute(delete(BotStar).where(BotStar.bot_id == bot_id, BotStar.user_id == user_id))


def star_state(bot_id: uuid.UUID, user_id: uuid.UUID) -> tuple[int, bool]:
    """The bot's star count and whether ``user_id`` starred it, in one query."""
    mine = func.bool_or(BotStar.user_id == user_id)
    count, starred = db.execute(
        select(func.count(), func.coalesce(mine, False)).where(BotStar.bot_id == bot_id)
    ).one()
    return int(count), bool(starred)


def starred_page(
    user_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[tuple[Bot, datetime]]:
    """Up to ``limit`` bots ``user_id`` starred and may still see, newest star first.

    A bot made private, hidden, or whose owner left is left out (not shown as gone), so
    the list never says that it exists. ``before`` is the (starred at, bot id) cursor.
    """
    stmt = (
        select(Bot, BotStar.created_at)
        .join(BotStar, BotStar.bot_id == Bot.id)
        .where(BotStar.user_id == user_id, listed_to(user_id))
        .order_by(BotStar.created_at.desc(), BotStar.bot_id.desc())
        .limit(min(limit, MAX_PAGE + 1))
    )
    if before is not None:
        stmt = stmt.where(older_than(BotStar.created_at, BotStar.bot_id, before))
    return [(bot, at) for bot, at in db.execute(stmt).all()]
