"""Blocks between users: who may reach whom (docs/community.md#blocks).

A user who blocked someone gets no comments on their bots, no follows and no notifications
from them. Every community action that reaches another user asks :func:`blocked_either`
or sends its notification through :func:`notify_unless_blocked`.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import or_, select

from models.community.tables import Block
from models.db import session as db
from models.people.notifications import notify
from models.people.tables import Notification


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
