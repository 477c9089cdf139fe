"""``GET /bots/{id}/reconciliation``: the bot's live run replayed through the backtester.

Owner only (anyone else's bot is a 404). A bot without a live run (running or paused) is
a 409: there is nothing to reconcile, and the message says how to get one. A report
current for the run's last candle is served (200); otherwise a job is queued, once per
run and period, and the answer is 202 with the URL to poll (this one). See
docs/reconciliation.md.
"""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
import structlog
from flask import jsonify, url_for
from flask.views import MethodView
from redis.exceptions import RedisError

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.bots import NOT_FOUND
from api.errors import ErrorOut
from api.extensions import redis_client
from api.performance import blp
from api.performance.reconciliation_schemas import (
    ReconciliationOut,
    ReconciliationPendingOut,
    ReconciliationQuery,
)
from models.bots.bots import get_owned_bot
from models.bots.runs import active_run
from models.db import session as db
from models.errors import Conflict
from models.performance.reconciliation_store import is_current, mark_pending, stored_report
from workers.enqueue import enqueue_reconciliation, reconciliation_job_id

log = structlog.get_logger(__name__)

LOCATION = {"description": "Where to poll for the report (this URL)", "schema": {"type": "string"}}
NO_LIVE_RUN = "The bot has no live run to reconcile; start it (or resume it) first."


@blp.route("/<uuid:bot_id>/reconciliation")
class BotReconciliation(MethodView):
    @authenticated
    @blp.doc(operationId="getBotReconciliation")
    @blp.arguments(ReconciliationQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ReconciliationOut)
    @blp.alt_response(
        202,
        schema=ReconciliationPendingOut,
        description="Queued or running: poll the Location URL",
        headers={"Location": LOCATION},
        success=True,
    )
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="The bot has no live run")
    def get(self, query: dict[str, Any], bot_id: uuid.UUID) -> Any:
        """My bot's live run against a backtest of the same bars: trade diff, equity distance."""
        bot = get_owned_bot(current_user().id, bot_id)
        run = active_run(bot)
        if run is None:
            raise Conflict(NO_LIVE_RUN)
        period = query["period"]
        row = stored_report(run.id, period)
        if row is not None and is_current(row, run):
            return {"bot_id": bot.id, **{k: getattr(row, k) for k in _ROW_FIELDS}}
        job_id = reconciliation_job_id(str(run.id), period)
        requested_at = mark_pending(run.id, period, job_id, now_utc())
        # Committed first, so the job finds the row; if Redis refuses the job, the next poll
        # queues it again (a pending report without a waiting job is queued on every poll).
        db.commit()
        try:
            enqueue_reconciliation(redis_client(), str(run.id), period)
        except RedisError as exc:
            log.warning("reconciliation_enqueue_deferred", error_type=type(exc).__name__)
        location = url_for("performance.BotReconciliation", bot_id=bot.id, period=period)
        body = {
            "bot_id": bot.id,
            "run_id": run.id,
            "period": period,
            "status": "pending",
            "as_of_ts": run.last_candle_ts,
            "job_id": job_id,
            "location": location,
            "requested_at": requested_at,
        }
        # A Response of its own: the view's schema (the 200 one) must not dump it.
        response = jsonify(ReconciliationPendingOut().dump(body))
        response.status_code, response.headers["Location"] = 202, location
        return response


_ROW_FIELDS = tuple(name for name in ReconciliationOut().fields if name != "bot_id")
