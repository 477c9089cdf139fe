"""Bot lifecycle views: start, pause, resume, stop (owner only; anyone else's bot is a 404)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.bots import NOT_FOUND, blp
from api.bots.schemas import BotWithRunOut
from api.errors import ErrorOut
from api.extensions import settings
from api.people.activity import track
from models.bots.bots import Bot
from models.bots.runs import current_run, pause_bot, resume_bot, start_bot, stop_bot
from models.community.mirror_pauses import pause_mirrors_of
from models.db import session as db
from models.people.bot_events import bot_status

REFUSED = "The bot's status does not allow this action"


def with_run(bot: Bot) -> dict[str, Any]:
    """The response body: the bot's fields plus its current run."""
    body = {key: getattr(bot, key) for key in BotWithRunOut().fields if key != "run"}
    body["run"] = current_run(bot)
    return body


def announce(bot: Bot, action: str) -> None:
    """Stage the owner's ``bot.status`` event (and notification) before the view commits."""
    run = current_run(bot)
    run_id = None if run is None else run.id
    bot_status(bot.owner_id, bot.id, bot.name, action, status=bot.status, run_id=run_id)


@blp.route("/<uuid:bot_id>/start")
class BotStart(MethodView):
    @authenticated
    @blp.doc(operationId="startBot")
    @blp.response(200, BotWithRunOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description=REFUSED)
    @blp.alt_response(429, schema=ErrorOut, description="Too many of my bots are running")
    def post(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Start my draft, stopped or errored bot on a new paper run."""
        user = current_user()
        limit = settings().for_role("bot_limit", user.role_names)
        bot = start_bot(user.id, bot_id, limit, now_utc())
        announce(bot, "started")
        db.commit()
        track("bot.started", object_type="bot", object_id=bot.id)
        return with_run(bot)


@blp.route("/<uuid:bot_id>/pause")
class BotPause(MethodView):
    @authenticated
    @blp.doc(operationId="pauseBot")
    @blp.response(200, BotWithRunOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description=REFUSED)
    def post(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Pause my running bot (its run and account are kept)."""
        bot = pause_bot(current_user().id, bot_id, now_utc())
        announce(bot, "paused")
        db.commit()
        track("bot.paused", object_type="bot", object_id=bot.id)
        return with_run(bot)


@blp.route("/<uuid:bot_id>/resume")
class BotResume(MethodView):
    @authenticated
    @blp.doc(operationId="resumeBot")
    @blp.response(200, BotWithRunOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description=REFUSED)
    def post(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Resume my paused bot on the same run."""
        bot = resume_bot(current_user().id, bot_id)
        announce(bot, "resumed")
        db.commit()
        track("bot.resumed", object_type="bot", object_id=bot.id)
        return with_run(bot)


@blp.route("/<uuid:bot_id>/stop")
class BotStop(MethodView):
    @authenticated
    @blp.doc(operationId="stopBot")
    @blp.response(200, BotWithRunOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description=REFUSED)
    def post(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """Stop my running or paused bot and close its run."""
        now = now_utc()
        bot = stop_bot(current_user().id, bot_id, now)
        pause_mirrors_of(bot.id, now)
        announce(bot, "stopped")
        db.commit()
        track("bot.stopped", object_type="bot", object_id=bot.id)
        return with_run(bot)
