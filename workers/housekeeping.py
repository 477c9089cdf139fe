"""Periodic housekeeping jobs (registered in ``workers/schedule.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from models.backtests.backtests import stale_backtests
from models.bots.execution_logs import purge_tick_entries
from models.db import session as db
from models.identity import sessions
from models.identity.password_resets import purge_reset_tokens as purge_stale_reset_tokens
from workers.enqueue import backtest_job_id, enqueue_backtest

log = structlog.get_logger(__name__)

SESSION_RETENTION_DAYS = 30


def purge_sessions() -> int:
    """Delete login sessions that expired or were revoked over a month ago; returns the count.

    Safe to run twice: a second run finds nothing left to delete.
    """
    removed = sessions.purge_stale(datetime.now(UTC), SESSION_RETENTION_DAYS)
    log.info("sessions_purged", count=removed)
    return removed


def purge_reset_tokens() -> int:
    """Delete password reset tokens used or expired over a week ago; returns the count."""
    removed = purge_stale_reset_tokens(datetime.now(UTC))
    log.info("reset_tokens_purged", count=removed)
    return removed


TICK_LOG_BATCH = 10_000
TICK_LOG_MAX_BATCHES = 100


def purge_tick_logs() -> int:
    """Delete live runs' ``tick`` log entries older than ``BOT_TICK_LOG_DAYS``; returns the count.

    A 1m bot writes 1,440 a day. Batches of ``TICK_LOG_BATCH`` commit one by one, at most
    ``TICK_LOG_MAX_BATCHES`` per pass (the next hourly pass goes on). Idempotent.
    """
    days = current_app.extensions["botyard.settings"].bot_tick_log_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    removed = purge_tick_entries(cutoff, TICK_LOG_BATCH, TICK_LOG_MAX_BATCHES)
    log.info("tick_logs_purged", count=removed, days=days)
    return removed


STALE_BACKTEST_S = 120
MAX_BACKTEST_ATTEMPTS = 3


def requeue_backtests() -> int:
    """Re-queue backtests Postgres says are waiting but RQ has lost; returns how many.

    A Redis flush or a dead worker can leave a ``queued`` or ``running`` backtest with no
    live job. After ``MAX_BACKTEST_ATTEMPTS`` runs that never finished it is marked
    failed instead, so a backtest that kills its worker cannot loop forever.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("requeue_backtests runs as an RQ job")
    settings = current_app.extensions["botyard.settings"]
    cutoff = datetime.now(UTC) - timedelta(seconds=STALE_BACKTEST_S)
    requeued = 0
    for backtest in stale_backtests(cutoff):
        try:
            status = Job.fetch(backtest_job_id(str(backtest.id)), connection=job.connection)
            alive = status.get_status() in (
                JobStatus.QUEUED,
                JobStatus.STARTED,
                JobStatus.SCHEDULED,
            )
        except NoSuchJobError:
            alive = False
        if alive:
            continue
        if backtest.attempts >= MAX_BACKTEST_ATTEMPTS:
            backtest.status, backtest.finished_at = "failed", datetime.now(UTC)
            backtest.error = f"Stopped after {backtest.attempts} attempts that did not finish."
            continue
        backtest.status = "queued"
        enqueue_backtest(job.connection, str(backtest.id), settings.backtest_timeout)
        requeued += 1
    db.commit()
    log.info("backtests_requeued", count=requeued)
    return requeued
