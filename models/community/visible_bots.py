"""Which bots a viewer may see, as SQL: the list form of ``models.bots.bots.viewable_bot``.

Lists (my stars, a card's fork lineage) cannot call ``viewable_bot`` row by row, so they
filter with these expressions, which say the same thing: the viewer's own bots, and
anyone else's ``public`` or ``unlisted`` bot that moderation has not hidden, of an owner
whose account is active.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, false, or_, select
from sqlalchemy.sql.elements import ColumnElement

from models.bots.bots import SHARED_VISIBILITIES, Bot, owner_is_active
from models.identity.tables import User


def _owner_active(bot: Any) -> ColumnElement[bool]:
    return exists(select(User.id).where(User.id == bot.owner_id, owner_is_active()))


def visible_to(viewer_id: uuid.UUID | None, bot: Any = Bot) -> ColumnElement[bool]:
    """SQL: ``bot`` (the entity or an alias) is one ``viewer_id`` may open by its id."""
    others = bot.visibility.in_(SHARED_VISIBILITIES) & bot.hidden_at.is_(None) & _owner_active(bot)
    mine = bot.owner_id == viewer_id if viewer_id is not None else false()
    return or_(mine, others)


def listed_to(viewer_id: uuid.UUID | None, bot: Any = Bot) -> ColumnElement[bool]:
    """SQL: ``bot`` may be named to ``viewer_id`` unasked: their own, or a shown public bot.

    Stricter than :func:`visible_to`: an unlisted bot is seen by whoever has its id, and
    a link to it (a fork's lineage) would hand its id to everyone else.
    """
    others = (bot.visibility == "public") & bot.hidden_at.is_(None) & _owner_active(bot)
    mine = bot.owner_id == viewer_id if viewer_id is not None else false()
    return or_(mine, others)
