"""Comparing backtests: a bot's backtests with their metrics, and several side by side.

``GET /bots/{id}/backtests`` registers on the bots blueprint (its URL is the bot's) but
reads backtests, so it lives here with the comparison.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from webargs.fields import DelimitedList

from api.access import authenticated, current_user
from api.backtests import blp
from api.backtests.routes import backtest_view
from api.backtests.schemas import BacktestOut, BacktestPageOut, BacktestQuery
from api.bots import NOT_FOUND
from api.bots import blp as bots_blp
from api.errors import ErrorOut
from api.pagination import paged
from api.schemas import EQUITY_ROW, OutSchema, StrictSchema
from models.backtests.backtests import get_owned_backtest, search_backtests
from models.backtests.results import equity_for_chart
from models.bots.bots import get_owned_bot

MAX_COMPARED = 10


class BotBacktestQuery(BacktestQuery):
    """Filter a bot's backtests by status (the bot is in the path)."""

    class Meta:
        exclude = ("bot_id",)


class CompareQuery(StrictSchema):
    """Two to ten of my backtests, and how many points each normalised curve gets."""

    ids = DelimitedList(
        ma.fields.UUID(),
        required=True,
        validate=ma.validate.Length(min=2, max=MAX_COMPARED),
        metadata={"description": "Comma-separated backtest ids, 2-10, all mine"},
    )
    points = ma.fields.Integer(load_default=200, validate=ma.validate.Range(min=2, max=2000))


class ComparedOut(BacktestOut):
    """One backtest of a comparison: the backtest and its curve scaled to start at 1.0."""

    equity = ma.fields.List(
        ma.fields.Raw(metadata=EQUITY_ROW),
        metadata={
            "description": "[ts_ms, equity / first equity], downsampled to `points`; empty "
            "until the backtest succeeded"
        },
    )


class ComparisonOut(OutSchema):
    """Backtests side by side, in the order asked for."""

    items = ma.fields.List(ma.fields.Nested(ComparedOut))


def normalised(rows: list[list[float]]) -> list[list[float]]:
    """``[ts, equity]`` rows scaled so that the first equity is 1.0 (empty stays empty)."""
    if not rows or rows[0][1] == 0:
        return []
    first = rows[0][1]
    return [[row[0], row[1] / first] for row in rows]


@bots_blp.route("/<uuid:bot_id>/backtests")
class BotBacktests(MethodView):
    @authenticated
    @bots_blp.doc(operationId="listBotBacktests")
    @bots_blp.arguments(BotBacktestQuery(), location="query", unknown=ma.RAISE)
    @bots_blp.response(200, BacktestPageOut)
    @bots_blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """My bot's backtests, newest first, with their metrics and metric-set version."""
        user = current_user()
        bot = get_owned_bot(user.id, bot_id)
        return paged(search_backtests(user.id, query.get("status"), bot.id), query, backtest_view)


@blp.route("/compare")
class BacktestComparison(MethodView):
    @authenticated
    @blp.doc(operationId="compareBacktests")
    @blp.arguments(CompareQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ComparisonOut)
    @blp.alt_response(404, schema=ErrorOut, description="One of the ids is not a backtest of mine")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Backtests side by side: metrics, and equity curves normalised to 1.0 for charting."""
        user = current_user()
        ids = list(dict.fromkeys(query["ids"]))  # a repeated id is compared once
        items = []
        for backtest in (get_owned_backtest(user.id, backtest_id) for backtest_id in ids):
            body = backtest_view(backtest)
            curve = equity_for_chart(backtest.id, query["points"])
            body["equity"] = normalised(curve) if backtest.status == "succeeded" else []
            items.append(body)
        return {"items": items}
