"""Bot views: the caller's own bots; someone else's shared bot only as its public card.

Anyone else's private bot (or a hidden one, or one whose owner left) is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.bots import NOT_FOUND, blp
from api.bots.cards import bot_cards
from api.bots.schemas import (
    OWNER_ONLY,
    BotDetailOut,
    BotIn,
    BotOut,
    BotPageOut,
    BotPatch,
    BotQuery,
)
from api.errors import ErrorOut
from api.pagination import paged
from api.people.activity import track
from models.bots.bots import (
    Bot,
    create_bot,
    delete_bot,
    get_owned_bot,
    search_bots,
    update_bot,
    viewable_bot,
)
from models.bots.runs import current_run
from models.community.mirror_pauses import pause_mirrors_of
from models.community.mirrors import refuse_shared_mirror
from models.db import session as db
from models.people.preferences import bot_defaults


def bot_view(bot: Bot, mine: bool, viewer_id: uuid.UUID | None = None) -> dict[str, Any]:
    """GET's body: the card, plus the bot's fields and latest run's error for its owner.

    ``viewer_id`` is whom the card is for (their star, the lineage they may see).
    """
    [card] = bot_cards([bot], viewer_id)
    if not mine:
        return {**card, **dict.fromkeys(OWNER_ONLY), "view": "card"}
    body: dict[str, Any] = {key: getattr(bot, key) for key in BotOut().fields}
    run = current_run(bot)
    return {**card, **body, "last_error": run.error if run is not None else None, "view": "owner"}


@blp.route("")
class Bots(MethodView):
    @authenticated
    @blp.doc(operationId="listBots")
    @blp.arguments(BotQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BotPageOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List my bots, newest first (filter by name text and status)."""
        stmt = search_bots(current_user().id, query.get("q"), query.get("status"))
        return paged(stmt, query)

    @authenticated
    @blp.doc(operationId="createBot")
    @blp.arguments(BotIn())
    @blp.response(201, BotOut)
    @blp.alt_response(409, schema=ErrorOut, description="A bot of mine has that name")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid fields or strategy")
    def post(self, data: dict[str, Any]) -> Bot:
        """Create a bot (status `draft`)."""
        user = current_user()
        bot = create_bot(user.id, {**bot_defaults(user.id), **data})
        db.commit()
        track("bot.created", object_type="bot", object_id=bot.id, data={"name": bot.name})
        if bot.visibility == "public":
            track("bot.published", object_type="bot", object_id=bot.id)
        return bot


@blp.route("/<uuid:bot_id>")
class BotById(MethodView):
    @authenticated
    @blp.doc(operationId="getBot")
    @blp.response(200, BotDetailOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such bot that I may see")
    def get(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """A bot: all of mine (`view: owner`), or the card of someone else's shared bot."""
        viewer_id = current_user().id
        bot, mine = viewable_bot(viewer_id, bot_id)
        return bot_view(bot, mine, viewer_id)

    @authenticated
    @blp.doc(operationId="updateBot")
    @blp.arguments(BotPatch())
    @blp.response(200, BotOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(
        409, schema=ErrorOut, description="Name taken, the bot is live, or a mirror made shared"
    )
    @blp.alt_response(422, schema=ErrorOut, description="Invalid fields or strategy")
    def patch(self, data: dict[str, Any], bot_id: uuid.UUID) -> Bot:
        """Change some of my bot's fields (not its status)."""
        bot = get_owned_bot(current_user().id, bot_id)
        was_public = bot.visibility == "public"
        refuse_shared_mirror(bot.id, data.get("visibility"))
        bot = update_bot(bot, data)
        if "visibility" in data:
            pause_mirrors_of(bot.id, now_utc())
        db.commit()
        track("bot.updated", object_type="bot", object_id=bot.id, data={"fields": sorted(data)})
        if bot.visibility == "public" and not was_public:
            # The followers' feed shows a bot when it becomes public (docs/community.md).
            track("bot.published", object_type="bot", object_id=bot.id)
        return bot

    @authenticated
    @blp.doc(operationId="deleteBot")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="The bot is running")
    def delete(self, bot_id: uuid.UUID) -> None:
        """Delete my bot; its backtests stay."""
        bot = get_owned_bot(current_user().id, bot_id)
        name = bot.name
        delete_bot(bot)
        db.commit()
        track("bot.deleted", object_type="bot", object_id=bot_id, data={"name": name})
