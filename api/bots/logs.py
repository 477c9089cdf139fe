"""A bot's structured execution logs, across all its runs (owner only; else a 404)."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.bots import NOT_FOUND, blp
from api.bots.schemas import BotLogPageOut, BotLogQuery
from api.errors import ErrorOut
from api.pagination import cursor_page
from models.bots.bots import get_owned_bot
from models.bots.execution_logs import logs_page


@blp.route("/<uuid:bot_id>/logs")
class BotLogs(MethodView):
    @authenticated
    @blp.doc(operationId="listBotLogs")
    @blp.arguments(BotLogQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BotLogPageOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """My bot's execution logs, newest first, filtered and paged by cursor (last id seen)."""
        bot = get_owned_bot(current_user().id, bot_id)
        limit = query.pop("limit")
        rows, next_cursor = cursor_page(
            lambda n: logs_page(bot.id, **_filters(query), limit=n), limit, lambda row: row.id
        )
        return {"rows": rows, "next_cursor": next_cursor}


def _filters(query: dict[str, Any]) -> dict[str, Any]:
    """The query's filters as :func:`logs_page` keywords."""
    renamed = {"since": "since_ms"}
    return {renamed.get(key, key): value for key, value in query.items()}
