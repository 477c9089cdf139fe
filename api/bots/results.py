"""What a bot's current (or latest) run has done: trades, equity curve, performance.

Owner only: anyone else's bot is a 404. A bot never started answers 200 with no rows
and a performance body whose run fields are null. Performance and daily equity are read
from what the performance job stores (docs/metrics.md, Live performance).
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.bots import NOT_FOUND, blp
from api.bots.schemas import (
    BotEquityOut,
    BotEquityQuery,
    BotPerformanceOut,
    BotTradePageOut,
    PerformanceQuery,
)
from api.errors import ErrorOut
from api.pagination import cursor_page, page_body
from api.schemas import PageQuery
from models.bots.bots import get_owned_bot
from models.bots.results import BOT_CURVE, run_trades_page
from models.bots.runs import BotRun, current_run
from models.db import session as db
from models.equity_curves import count_points, points_for_chart, points_page
from models.performance.live import daily_equity, day_count, day_item, live_performance


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
    @blp.arguments(BotEquityQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BotEquityOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """The current run's equity: per bar (a chart of `points`, or by cursor), or per day."""
        run = current_run(get_owned_bot(current_user().id, bot_id))
        resolution = query["resolution"]
        if run is None:
            return _equity_body([], 0, None, resolution, [] if resolution == "day" else None)
        if resolution == "day":
            return _daily(run, query)
        total = count_points(BOT_CURVE, run.id)
        if "points" in query:
            rows = points_for_chart(BOT_CURVE, run.id, query["points"])
            return _equity_body(rows, total, None, "bar", None)
        rows, next_cursor = cursor_page(
            lambda n: points_page(BOT_CURVE, run.id, query.get("cursor"), n),
            query["limit"],
            lambda row: int(row[0]),
        )
        return _equity_body(rows, total, next_cursor, "bar", None)


def _equity_body(
    rows: list[Any],
    total: int,
    next_cursor: Any,
    resolution: str,
    days: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The equity response: ``days`` is the day rows in full (null per bar)."""
    return {
        "rows": rows,
        "total": total,
        "next_cursor": next_cursor,
        "resolution": resolution,
        "days": days,
    }


def _daily(run: BotRun, query: dict[str, Any]) -> dict[str, Any]:
    """A page of the run's daily rollups: ``rows`` ``[last_ts, close]``, ``days`` in full."""
    days, next_cursor = cursor_page(
        lambda n: daily_equity(run, query.get("cursor"), n),
        query["limit"],
        lambda row: int(row.last_ts),
    )
    body = _equity_body(
        [[row.last_ts, row.close] for row in days],
        day_count(run),
        next_cursor,
        "day",
        [day_item(row) for row in days],
    )
    db.commit()  # a run rolled up on the spot keeps its rows
    return body


@blp.route("/<uuid:bot_id>/performance")
class BotPerformance(MethodView):
    @authenticated
    @blp.doc(operationId="getBotPerformance")
    @blp.arguments(PerformanceQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BotPerformanceOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """The current run's stored performance snapshot for a period, position and cash."""
        bot = get_owned_bot(current_user().id, bot_id)
        body = live_performance(bot, current_run(bot), query["period"])
        db.commit()  # a snapshot computed on the spot is kept
        return body
