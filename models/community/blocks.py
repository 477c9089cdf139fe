"""Blocks between users: who may reach whom (docs/community.md#blocks).

A user who blocked someone gets no comments on their bots, no follows and no notifications
from them. Every community action that reaches another user asks :func:`blocked_either`
or sends its notification through :func:`notify_unless_blocked`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert

from models.community.people import MAX_PAGE, PersonEntry, profile_visibility
from models.community.tables import Block, Follow
from models.db import session as db
from models.errors import Invalid
from models.identity.tables import User
from models.pagination import older_than
from models.people.notifications import notify
from models.people.tables import AccountSettings, Notification


def has_blocked(blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
    """Whether ``blocker_id`` blocked ``blocked_id``."""
    found = db.scalar(
        select(Block.blocker_id).where(
            Block.blocker_id == blocker_id, Block.blocked_id == blocked_id
        )
    )
    return found is not None


def blocked_either(a: uuid.UUID, b: uuid.UUID) -> bool:
    """Whether either user blocked the other."""
    found = db.scalar(
        select(Block.blocker_id)
        .where(
            or_(
                (Block.blocker_id == a) & (Block.blocked_id == b),
                (Block.blocker_id == b) & (Block.blocked_id == a),
            )
        )
        .limit(1)
    )
    return found is not None


def notify_unless_blocked(
    actor_id: uuid.UUID, user_id: uuid.UUID, event: str, data: dict[str, Any]
) -> Notification | None:
    """``notify`` ``user_id`` of what ``actor_id`` did, unless it is theirs or they blocked them."""
    if actor_id == user_id or has_blocked(user_id, actor_id):
        return None
    return notify(user_id, event, data)


def block(blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
    """Make ``blocker_id`` block ``blocked_id``; True when the block is new.

    The follows between the two, in both directions, go with it: a block ends the
    relation, and unblocking does not bring them back. :class:`Invalid` for oneself.
    """
    if blocker_id == blocked_id:
        raise Invalid("You cannot block yourself.", {"username": ["You cannot block yourself."]})
    inserted = db.execute(
        insert(Block)
        .values(blocker_id=blocker_id, blocked_id=blocked_id, created_at=func.clock_timestamp())
        .on_conflict_do_nothing(index_elements=["blocker_id", "blocked_id"])
        .returning(Block.blocker_id)
    ).first()
    db.execute(
        delete(Follow).where(
            or_(
                and_(Follow.follower_id == blocker_id, Follow.followee_id == blocked_id),
                and_(Follow.follower_id == blocked_id, Follow.followee_id == blocker_id),
            )
        )
    )
    return inserted is not None


def unblock(blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
    """Lift ``blocker_id``'s block of ``blocked_id``; True when there was one."""
    gone = db.execute(
        delete(Block)
        .where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)
        .returning(Block.blocker_id)
    ).first()
    return gone is not None


def blocks_page(
    blocker_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[PersonEntry]:
    """Whom ``blocker_id`` blocked, newest first, at most ``limit`` (keyset on time, id).

    Unlike the follow lists, a blocked account that is disabled is still listed: the
    blocker may want to lift a block whatever became of the other account.
    """
    stmt = (
        select(User.id, User.username, User.display_name, profile_visibility(), Block.created_at)
        .select_from(Block)
        .join(User, User.id == Block.blocked_id)
        .outerjoin(AccountSettings, AccountSettings.user_id == User.id)
        .where(Block.blocker_id == blocker_id, User.erased_at.is_(None))
        .order_by(Block.created_at.desc(), Block.blocked_id.desc())
        .limit(min(limit, MAX_PAGE + 1))
    )
    if after is not None:
        stmt = stmt.where(older_than(Block.created_at, Block.blocked_id, after))
    return [
        PersonEntry(
            username=username,
            display_name=display_name if visibility == "public" else None,
            profile_public=visibility == "public",
            since=created_at,
            user_id=user_id,
        )
        for user_id, username, display_name, visibility, created_at in db.execute(stmt)
    ]
