"""Backtest views: queue (202), follow, read results, cancel. Only the owner sees a backtest."""

from __future__ import annotations

import time
import uuid
from typing import Any

import marshmallow as ma
import structlog
from flask import url_for
from flask.views import MethodView
from redis.exceptions import RedisError

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.backtests import blp
from api.backtests.schemas import (
    BacktestIn,
    BacktestOut,
    BacktestPageOut,
    BacktestQuery,
    TradePageOut,
)
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.pagination import cursor_page, page_body, paged
from api.people.activity import track
from api.schemas import EquityOut, EquityQuery, PageQuery
from models.backtests.backtests import (
    Backtest,
    Limits,
    build_spec,
    create_backtest,
    get_owned_backtest,
    request_cancel,
    search_backtests,
)
from models.backtests.results import (
    candles_fingerprint,
    equity_count,
    equity_for_chart,
    equity_page,
    trades_page,
)
from models.bots.bots import get_owned_bot
from models.db import session as db
from models.people.preferences import trading_defaults
from workers.enqueue import cancel_backtest_job, enqueue_backtest

log = structlog.get_logger(__name__)

LOCATION = {"description": "The backtest's URL", "schema": {"type": "string"}}


def backtest_view(backtest: Backtest, with_data_check: bool = False) -> dict[str, Any]:
    """The response body: the row plus derived timings (and, for one backtest, data drift)."""
    body = {key: getattr(backtest, key) for key in BacktestOut().fields if hasattr(backtest, key)}
    started, finished = backtest.started_at, backtest.finished_at
    body["queued_ms"] = (
        int((started - backtest.created_at).total_seconds() * 1000) if started else None
    )
    body["run_ms"] = (
        int((finished - started).total_seconds() * 1000) if started and finished else None
    )
    body["data_changed"] = None
    if with_data_check and backtest.candles_fingerprint:
        body["data_changed"] = candles_fingerprint(backtest.spec) != backtest.candles_fingerprint
    return body


@blp.route("")
class Backtests(MethodView):
    @authenticated
    @blp.doc(operationId="listBacktests")
    @blp.arguments(BacktestQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, BacktestPageOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List my backtests, newest first (filter by status and bot)."""
        stmt = search_backtests(current_user().id, query.get("status"), query.get("bot_id"))
        return paged(stmt, query, backtest_view)

    @authenticated
    @blp.doc(operationId="createBacktest")
    @blp.arguments(BacktestIn())
    @blp.response(202, BacktestOut, headers={"Location": LOCATION})
    @blp.alt_response(404, schema=ErrorOut, description="No such bot of mine")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid spec, range or size")
    @blp.alt_response(429, schema=ErrorOut, description="Too many queued or running backtests")
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Queue a backtest of a bot or an inline spec; follow it at the Location URL."""
        user = current_user()
        bot = get_owned_bot(user.id, data["bot_id"]) if "bot_id" in data else None
        s = settings()
        quota = s.for_role("backtest_quota", user.role_names)
        limits = Limits(s.backtest_max_bars, s.backtest_max_days, quota)
        defaults = trading_defaults(user.id)
        spec = build_spec(data, bot, int(time.time() * 1000), limits, defaults)
        backtest = create_backtest(user.id, spec, limits.quota)
        # Commit first, so the worker always finds the row. If Redis then refuses the job,
        # the backtest is saved as queued and the requeue sweep enqueues it once Redis is back.
        db.commit()
        track(
            "backtest.created",
            object_type="backtest",
            object_id=backtest.id,
            data={"bot_id": str(bot.id) if bot else None},
        )
        try:
            enqueue_backtest(redis_client(), str(backtest.id), s.backtest_timeout)
        except RedisError as exc:
            log.warning("backtest_enqueue_deferred", error_type=type(exc).__name__)
        location = url_for("backtests.BacktestById", backtest_id=backtest.id)
        return backtest_view(backtest), 202, {"Location": location}


@blp.route("/<uuid:backtest_id>")
class BacktestById(MethodView):
    @authenticated
    @blp.doc(operationId="getBacktest")
    @blp.response(200, BacktestOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such backtest of mine")
    def get(self, backtest_id: uuid.UUID) -> dict[str, Any]:
        """One of my backtests: status, progress, timings, metrics, errors."""
        backtest = get_owned_backtest(current_user().id, backtest_id)
        return backtest_view(backtest, with_data_check=backtest.status == "succeeded")

    @authenticated
    @blp.doc(operationId="cancelBacktest")
    @blp.response(200, BacktestOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such backtest of mine")
    @blp.alt_response(409, schema=ErrorOut, description="Already finished")
    def delete(self, backtest_id: uuid.UUID) -> dict[str, Any]:
        """Cancel: a queued backtest never runs; a running one stops at its next checkpoint."""
        backtest = get_owned_backtest(current_user().id, backtest_id)
        was_queued = backtest.status == "queued"
        request_cancel(backtest, now_utc())
        db.commit()
        track("backtest.cancelled", object_type="backtest", object_id=backtest.id)
        if was_queued:
            cancel_backtest_job(redis_client(), str(backtest.id))
        return backtest_view(backtest)


@blp.route("/<uuid:backtest_id>/trades")
class BacktestTrades(MethodView):
    @authenticated
    @blp.doc(operationId="listBacktestTrades")
    @blp.arguments(PageQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, TradePageOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such backtest of mine")
    def get(self, query: dict[str, Any], backtest_id: uuid.UUID) -> dict[str, Any]:
        """My backtest's closed trades, in order (paged)."""
        backtest = get_owned_backtest(current_user().id, backtest_id)
        items, total = trades_page(backtest.id, query["page"], query["page_size"])
        return page_body(items, total, query)


@blp.route("/<uuid:backtest_id>/equity")
class BacktestEquityCurve(MethodView):
    @authenticated
    @blp.doc(operationId="getBacktestEquity")
    @blp.arguments(EquityQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, EquityOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such backtest of mine")
    def get(self, query: dict[str, Any], backtest_id: uuid.UUID) -> dict[str, Any]:
        """The equity curve: downsampled to `points` for charts, or every bar by cursor."""
        backtest = get_owned_backtest(current_user().id, backtest_id)
        total = equity_count(backtest.id)
        if "points" in query:
            return {
                "rows": equity_for_chart(backtest.id, query["points"]),
                "total": total,
                "next_cursor": None,
            }
        rows, next_cursor = cursor_page(
            lambda n: equity_page(backtest.id, query.get("cursor"), n),
            query["limit"],
            lambda row: int(row[0]),
        )
        return {"rows": rows, "total": total, "next_cursor": next_cursor}
