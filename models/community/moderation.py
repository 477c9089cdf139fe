"""Hiding and restoring bots and comments (moderators; docs/community.md#moderation).

A hidden object stays its owner's: only ``hidden_at`` is set, and every read for anyone
else leaves it out (``viewable_bot``, boards, profiles, feeds, comment lists). Each call is
one conditional UPDATE, so hiding twice (or two moderators at once) changes it once and
tells the owner once. The owner hears of it through ``notify`` directly, not through
``notify_unless_blocked``: it is the platform speaking, not another user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from models.bots.bots import Bot
from models.community.mirror_pauses import pause_mirrors_of
from models.community.tables import Comment
from models.db import session as db
from models.errors import NotFound
from models.people.notifications import notify

HIDDEN_EVENT = "content.hidden"


@dataclass(frozen=True)
class Moderated:
    """A bot or comment after a hide or restore, and whether this call changed it."""

    object_type: str
    object_id: uuid.UUID
    bot_id: uuid.UUID
    owner_id: uuid.UUID
    hidden_at: datetime | None
    changed: bool


def _table(object_type: str) -> Any:
    if object_type == "bot":
        return Bot
    if object_type == "comment":
        return Comment
    raise ValueError(f"cannot hide a {object_type!r}")


def _current(object_type: str, object_id: uuid.UUID) -> Moderated:
    table = _table(object_type)
    owner = table.owner_id if object_type == "bot" else table.author_id
    bot_id = table.id if object_type == "bot" else table.bot_id
    row = db.execute(
        select(bot_id, owner, table.hidden_at).where(table.id == object_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No {object_type} with that id.")
    return Moderated(object_type, object_id, row[0], row[1], row[2], changed=False)


def _set_hidden(object_type: str, object_id: uuid.UUID, value: datetime | None) -> bool:
    """Set ``hidden_at`` if it is not already in that state; whether a row changed."""
    table = _table(object_type)
    already = table.hidden_at.is_(None) if value is None else table.hidden_at.is_not(None)
    changed = db.scalar(
        update(table)
        .where(table.id == object_id, ~already)
        .values(hidden_at=value)
        .returning(table.id)
    )
    return changed is not None


def hide(
    object_type: str, object_id: uuid.UUID, moderator_id: uuid.UUID, reason: str, now: datetime
) -> Moderated:
    """Hide a bot or comment (again: no change); the owner is told the first time.

    :class:`NotFound` when there is no such object. Flushes, does not commit.
    """
    changed = _set_hidden(object_type, object_id, now)
    state = _current(object_type, object_id)
    if changed and object_type == "bot":
        pause_mirrors_of(object_id, now)  # a hidden bot is followed by no mirror
    if changed and state.owner_id != moderator_id:
        notify(
            state.owner_id,
            HIDDEN_EVENT,
            {
                "object_type": object_type,
                "object_id": str(object_id),
                "bot_id": str(state.bot_id),
                "reason": reason,
            },
        )
    return replace(state, changed=changed)


def restore(object_type: str, object_id: uuid.UUID) -> Moderated:
    """Show a hidden bot or comment again (a shown one: no change); nobody is notified."""
    changed = _set_hidden(object_type, object_id, None)
    state = _current(object_type, object_id)
    return replace(state, changed=changed)
