"""Which bots may be named to a viewer, as SQL (lists cannot check bots one by one).

The list form of ``models.bots.bots.community_bot``: the viewer's own bots, and anyone
else's ``public`` bot that moderation has not hidden, of an owner whose account is active.
My stars and a card's fork lineage filter with it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from models.bots.bots import Bot, owner_is_active
from models.identity.tables import User


def _owner_active(bot: Any) -> ColumnElement[bool]:
    return exists(select(User.id).where(User.id == bot.owner_id, owner_is_active()))


def listed_to(viewer_id: uuid.UUID | None, bot: Any = Bot) -> ColumnElement[bool]:
    """SQL: ``bot`` may be named to ``viewer_id`` unasked: their own, or a shown public bot.

    An unlisted bot is seen by whoever has its id, but a list naming it (a fork's lineage)
    would hand its id to everyone else.
    """
    others = (bot.visibility == "public") & bot.hidden_at.is_(None) & _owner_active(bot)
    mine = bot.owner_id == viewer_id if viewer_id is not None else false()
    return or_(mine, others)
