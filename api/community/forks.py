"""Forks: copy a public bot, or a bot shared with me through a `view` link, as my draft.

Both routes end in models.community.forks.fork_bot; the feed reads the ``bot.forked``
activity (object: the new bot; data: the source's id and name, and how it was reached).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView
from flask_smorest import abort

from api.access import authenticated, current_user
from api.bots.schemas import BotOut
from api.community import blp
from api.community.fork_schemas import ForkIn
from api.community.limits import action_limit
from api.errors import ErrorOut
from api.people.activity import track
from models.bots.bots import Bot
from models.community.blocks import has_blocked
from models.community.forks import fork_bot, forkable_bot
from models.community.sharing import LINK_NOT_FOUND, shared_bot
from models.db import session as db
from models.errors import NotFound

FORK_NOT_FOUND = "No bot with that id that I may fork"
REFUSED = "The fork is invalid (its name, or a source the engine no longer accepts)"


def _forked(source: Bot, data: dict[str, Any], via: str) -> Bot:
    """Fork ``source`` for the caller, commit, and record the activity the feed reads."""
    fork = fork_bot(current_user(), source, data.get("name"))
    db.commit()
    track(
        "bot.forked",
        object_type="bot",
        object_id=fork.id,
        data={"source_bot_id": str(source.id), "source_name": source.name, "via": via},
    )
    return fork


@blp.route("/bots/<uuid:bot_id>/fork")
class BotFork(MethodView):
    @authenticated
    @action_limit("fork")
    @blp.doc(operationId="forkBot")
    @blp.arguments(ForkIn())
    @blp.response(201, BotOut)
    @blp.alt_response(404, schema=ErrorOut, description=FORK_NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="Name taken, or my bot is hidden")
    @blp.alt_response(422, schema=ErrorOut, description=REFUSED)
    @blp.alt_response(429, schema=ErrorOut, description="Too many forks; see Retry-After")
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> Bot:
        """Fork a public bot (or one of mine) as my draft, with its lineage."""
        user = current_user()
        source = forkable_bot(user.id, bot_id)
        return _forked(source, data, "own" if source.owner_id == user.id else "public")


@blp.route("/shared/<string:token>/fork")
class SharedBotFork(MethodView):
    @authenticated
    @action_limit("fork")
    @blp.doc(operationId="forkSharedBot")
    @blp.arguments(ForkIn())
    @blp.response(201, BotOut)
    @blp.alt_response(403, schema=ErrorOut, description="The link shares performance only")
    @blp.alt_response(404, schema=ErrorOut, description=LINK_NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="Name taken")
    @blp.alt_response(422, schema=ErrorOut, description=REFUSED)
    @blp.alt_response(429, schema=ErrorOut, description="Too many forks; see Retry-After")
    def post(self, data: dict[str, Any], token: str) -> Bot:
        """Fork the bot behind a `view` share link as my draft (not counted as a view)."""
        user = current_user()
        link, source = shared_bot(token, datetime.now(UTC))
        if source.owner_id != user.id and has_blocked(source.owner_id, user.id):
            raise NotFound(LINK_NOT_FOUND)
        if link["scope"] != "view":
            abort(403, message="This link shares the bot's performance only; it cannot be forked.")
        return _forked(source, data, "share_link")
