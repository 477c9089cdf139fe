"""Stars: ``PUT|DELETE /bots/{id}/star`` and ``GET /me/stars`` (docs/community.md#stars).

Both writes are idempotent and answer the same body: the bot's star count, counted after
the change, and whether I starred it. Only my bot or a public one I may see can be starred;
any other is the bots' 404.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api import time_cursor as cursors
from api.access import authenticated, current_user
from api.bots.cards import bot_cards
from api.community import blp
from api.community.limits import action_limit
from api.community.star_schemas import StarOut, StarredListOut, StarredQuery
from api.errors import ErrorOut
from api.pagination import cursor_page
from models.bots.bots import community_bot
from models.community.stars import star, star_state, starred_page, unstar
from models.db import session as db

NOT_FOUND = "No bot with that id that I may see"
LIMITED = "Too many stars and unstars: try again after Retry-After seconds"


def _state(bot_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
    stars, starred = star_state(bot_id, user_id)
    return {"bot_id": bot_id, "starred": starred, "stars": stars}


@blp.route("/bots/<uuid:bot_id>/star")
class BotStarById(MethodView):
    @authenticated
    @action_limit("star")
    @blp.doc(operationId="starBot")
    @blp.response(200, StarOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(429, schema=ErrorOut, description=LIMITED)
    def put(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Star my bot or a public bot I may see; starring again changes nothing."""
        user = current_user()
        community_bot(user.id, bot_id)
        star(bot_id, user.id)
        db.commit()
        return _state(bot_id, user.id)

    @authenticated
    @action_limit("star")
    @blp.doc(operationId="unstarBot")
    @blp.response(200, StarOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(429, schema=ErrorOut, description=LIMITED)
    def delete(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Remove my star from a bot I may see; unstarring again changes nothing."""
        user = current_user()
        community_bot(user.id, bot_id)
        unstar(bot_id, user.id)
        db.commit()
        return _state(bot_id, user.id)


@blp.route("/me/stars")
class MyStars(MethodView):
    @authenticated
    @blp.doc(operationId="listMyStars")
    @blp.arguments(StarredQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, StarredListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The bots I starred and may still see, as cards, newest star first (cursor paged)."""
        user = current_user()
        before = cursors.decode(query.get("cursor"))
        rows, next_cursor = cursor_page(
            lambda n: starred_page(user.id, before, n),
            query["limit"],
            lambda row: cursors.encode(row[1], row[0].id),
        )
        cards = bot_cards([bot for bot, _ in rows], user.id)
        return {
            "items": [
                {"starred_at": at, "bot": card} for (_, at), card in zip(rows, cards, strict=True)
            ],
            "next_cursor": next_cursor,
        }
