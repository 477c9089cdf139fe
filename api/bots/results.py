"""What a bot's current (or latest) run has done: trades, equity curve, performance.

Owner only: anyone else's bot is a 404. A bot never started answers 200 with no rows
and a performance body whose run fields are null.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.bots import NOT_FOUND, blp
from api.bots.schemas import BotPerformanceOut, BotTradePageOut
from api.errors import ErrorOut
from api.pagination import cursor_page, page_body
from api.schemas import EquityOut, EquityQuery, PageQuery
from models.bots.bots import get_owned_bot
from models.bots.results import BOT_CURVE, run_performance, run_trades_page
from models.bots.runs import current_run
from models.equity_curves import count_points, points_for_chart, points_page


@blp.route("/<uuid:bot_id>/trades")
class BotTrades(MethodView):
    @authenticated
    @blp.doc(operationId="listBotTrades")
    @blp.arguments(PageQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BotTradePageOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """My bot's closed trades in its current run, oldest exit first (paged)."""
        run = current_run(get_owned_bot(current_user().id, bot_id))
        if run is None:
            return page_body([], 0, query)
        return page_body(*run_trades_page(run.id, query["page"], query["page_size"]), query)


@blp.route("/<uuid:bot_id>/equity")
class BotEquityCurve(MethodView):
    @authenticated
    @blp.doc(operationId="getBotEquity")
    @blp.arguments(EquityQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, EquityOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """The current run's equity: downsampled to `points` for charts, or every bar by cursor."""
        run = current_run(get_owned_bot(current_user().id, bot_id))
        if run is None:
            return {"rows": [], "total": 0, "next_cursor": None}
        total = count_points(BOT_CURVE, run.id)
        if "points" in query:
            rows = points_for_chart(BOT_CURVE, run.id, query["points"])
            return {"rows": rows, "total": total, "next_cursor": None}
        rows, next_cursor = cursor_page(
            lambda n: points_page(BOT_CURVE, run.id, query.get("cursor"), n),
            query["limit"],
            lambda row: int(row[0]),
        )
        return {"rows": rows, "total": total, "next_cursor": next_cursor}


@blp.route("/<uuid:bot_id>/performance")
class BotPerformance(MethodView):
    @authenticated
    @blp.doc(operationId="getBotPerformance")
    @blp.response(200, BotPerformanceOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, bot_id: uuid.UUID) -> dict[str, Any]:
        """The current run's metrics (the backtest set), position, cash and unrealized P&L."""
        bot = get_owned_bot(current_user().id, bot_id)
        return run_performance(bot, current_run(bot))
