"""Reconciliation jobs: replay a live run through the backtester and store the diff.

``reconcile_run(run_id, period)`` (default queue, job id ``reconcile-{run}-{period}``)
loads the run, replays it (``models.performance.reconciliation``) and upserts its
``run_reconciliations`` row; run twice on the same data it writes nothing the second
time. ``reconcile_public_bots()`` is periodic (``RECONCILIATION_INTERVAL_MINUTES``): it
queues the ``all`` report of every public bot's live run whose report is older than the
run's last candle. A diverged report logs ``reconciliation_diverged``. See
docs/reconciliation.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from flask import current_app
from rq import get_current_job

from engine.candles import CandleError
from engine.params import ParamError
from engine.rule_nodes import RuleError
from models.bots.bots import Bot
from models.bots.runs import BotRun
from models.db import session as db
from models.performance.reconciliation import reconcile
from models.performance.reconciliation_store import (
    mark_pending,
    save_failure,
    save_report,
    stale_public_runs,
)
from models.performance.tables import PERIODS
from workers.enqueue import enqueue_reconciliation, reconciliation_job_id
from workers.queues import redis_connection

log = structlog.get_logger(__name__)

GENERIC_FAILURE = "The reconciliation stopped on an internal error; it has been logged."
# Reports one periodic pass may queue (the oldest first; the next pass takes the rest).
PASS_LIMIT = 1000


def reconcile_run(run_id: str, period: str = "all") -> str:
    """Reconcile one run over ``period``.

    Returns ``done``, ``unchanged`` (the same report was already stored), ``failed`` or
    ``missing`` (the run was deleted).
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}")
    settings = current_app.extensions["botyard.settings"]
    key = uuid.UUID(run_id)
    run = db.get(BotRun, key, populate_existing=True)
    bot = db.get(Bot, run.bot_id) if run is not None else None
    if run is None or bot is None:
        return "missing"  # the run (or its bot) was deleted since
    job = get_current_job()
    job_id = job.id if job is not None else reconciliation_job_id(run_id, period)
    try:
        values = reconcile(
            run, bot, period, settings.bot_epoch_bars, settings.reconciliation_divergence_threshold
        )
    except (ParamError, RuleError, CandleError) as exc:
        db.rollback()
        save_failure(key, period, run.last_candle_ts, str(exc), datetime.now(UTC))
        db.commit()
        return "failed"
    except Exception:
        db.rollback()
        log.exception("reconciliation_crashed", run_id=run_id, period=period)
        if job is None or not job.retries_left:
            save_failure(key, period, run.last_candle_ts, GENERIC_FAILURE, datetime.now(UTC))
            db.commit()
        raise
    written = save_report(key, period, values, job_id, datetime.now(UTC))
    db.commit()
    if written and values["diverged"]:
        log.warning(
            "reconciliation_diverged",
            bot_id=str(bot.id),
            run_id=run_id,
            period=period,
            missing=values["missing"],
            extra=values["extra"],
            equity_max_abs_diff=values["equity_max_abs_diff"],
        )
    log.info("run_reconciled", run_id=run_id, period=period, written=written)
    return "done" if written else "unchanged"


def reconcile_public_bots() -> dict[str, int]:
    """Queue the ``all`` reports of public bots' live runs that are behind their last candle."""
    job = get_current_job()
    settings = current_app.extensions["botyard.settings"]
    connection = job.connection if job is not None else redis_connection(settings)
    stale = stale_public_runs("all", PASS_LIMIT)
    now = datetime.now(UTC)
    for run_id in stale:
        mark_pending(run_id, "all", reconciliation_job_id(str(run_id), "all"), now)
    db.commit()  # before the jobs are queued: a fast job must not find its row still to come
    queued = sum(enqueue_reconciliation(connection, str(r), "all") is not None for r in stale)
    counts = {"stale": len(stale), "queued": queued}
    log.info("public_reconciliations_queued", **counts)
    return counts
