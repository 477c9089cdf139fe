"""Bodies of the star endpoints: the star state of a bot, and my starred bots."""

from __future__ import annotations

import marshmallow as ma

from api.bots.card_schemas import BotCardOut
from api.schemas import OutSchema, StrictSchema
from api.time_cursor import cursor_field
from models.community.stars import MAX_PAGE


class StarOut(OutSchema):
    """A bot's star count and whether I starred it, after my PUT or DELETE."""

    bot_id = ma.fields.UUID()
    starred = ma.fields.Boolean(metadata={"description": "whether I starred it now"})
    stars = ma.fields.Integer(metadata={"description": "users who starred it now"})


class StarredQuery(StrictSchema):
    """Page my starred bots, newest star first."""

    cursor = cursor_field()
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PAGE))


class StarredBotOut(OutSchema):
    """A bot I starred, as its card, and when I starred it."""

    starred_at = ma.fields.DateTime()
    bot = ma.fields.Nested(BotCardOut)


class StarredListOut(OutSchema):
    """A page of my starred bots; ``next_cursor`` is null on the last page."""

    items = ma.fields.List(ma.fields.Nested(StarredBotOut))
    next_cursor = ma.fields.String(allow_none=True)
