"""Mirrors: follow a public live bot's trades in my own paper account.

See docs/community.md, "Mirrors".
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.bots.lifecycle import announce, with_run
from api.community import blp
from api.community.limits import action_limit
from api.community.mirror_schemas import MirrorIn, MirrorOut
from api.errors import ErrorOut
from api.extensions import settings
from api.people.activity import track
from models.community.mirrors import create_mirror
from models.db import session as db

NOT_FOUND = "No such bot that I may see"


@blp.route("/bots/<uuid:bot_id>/mirror")
class BotMirrors(MethodView):
    @authenticated
    @action_limit("fork")
    @blp.doc(operationId="mirrorBot")
    @blp.arguments(MirrorIn())
    @blp.response(201, MirrorOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(
        409,
        schema=ErrorOut,
        description="My own bot, not public, not running, or a bot of mine has that name",
    )
    @blp.alt_response(422, schema=ErrorOut, description="Invalid fields")
    @blp.alt_response(
        429, schema=ErrorOut, description="Too many forks and mirrors, or too many live bots"
    )
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """Mirror a public live bot: a running bot of mine that copies its trades from now on."""
        user = current_user()
        limit = settings().for_role("bot_limit", user.role_names)
        bot, source = create_mirror(user.id, bot_id, data, limit, now_utc())
        announce(bot, "started")
        db.commit()
        track(
            "bot.mirrored",
            object_type="bot",
            object_id=bot.id,
            data={"source_bot_id": str(source.id), "name": bot.name},
        )
        return {**with_run(bot), "source_bot_id": source.id, "paused_reason": None}
