"""``GET /bots/{id}/leaderboard-status``: where my bot is ranked, or why it is left out.

It registers on the bots blueprint (its URL is the bot's) but reads the leaderboards, so
it lives here. Owner only: anyone else's bot is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user
from api.bots import NOT_FOUND
from api.bots import blp as bots_blp
from api.errors import ErrorOut
from api.leaderboards.schemas import LeaderboardStatusOut
from models.bots.bots import get_owned_bot
from models.leaderboards.eligibility import reasons_now
from models.leaderboards.reads import active_generation, bot_standing

DETAIL_KEYS = ("days_tracked", "min_days", "trades", "min_trades", "duplicate_of")


@bots_blp.route("/<uuid:bot_id>/leaderboard-status")
class BotLeaderboardStatus(MethodView):
    @authenticated
    @bots_blp.doc(operationId="getBotLeaderboardStatus")
    @bots_blp.response(200, LeaderboardStatusOut)
    @bots_blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """My bot in the active leaderboard generation: its placings, or the reasons it has none."""
        bot = get_owned_bot(current_user().id, bot_id)
        standing = bot_standing(active_generation(), bot.id)
        reasons = list(standing.reasons)
        now = reasons_now(bot)
        # Not public (or hidden) now: it shows on no board, whatever the generation says.
        placings = standing.placings if not ({"not_public", "hidden"} & set(now)) else []
        if not placings:
            reasons += [reason for reason in now if reason not in reasons]
        return {
            "bot_id": bot.id,
            "generation_id": standing.generation_id,
            "generated_at": standing.generated_at,
            "ranked": bool(placings),
            "placings": placings,
            "reasons": reasons,
            "detail": {key: standing.detail.get(key) for key in DETAIL_KEYS},
        }
