"""Periodic housekeeping jobs (registered in ``workers/schedule.py``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app
from redis import Redis
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from models.backtests.backtests import stale_backtests
from models.bots.execution_logs import purge_tick_entries
from models.db import session as db
from models.identity import sessions
from models.identity.password_resets import purge_reset_tokens as purge_stale_reset_tokens
from workers.enqueue import backtest_job_id, enqueue_backtest
from workers.queues import ALL_QUEUES

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
_WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED)


def reap_abandoned_jobs(connection: Redis) -> dict[str, list[str]]:
    """Hand RQ the started jobs whose worker stopped heartbeating; returns their ids by queue.

    A running job's lease in its queue's started registry lasts ``WORKER_HEARTBEAT_TTL``
    and a live worker renews it (``workers/liveness.py``). An expired lease means the
    worker died: RQ's cleanup retries the job (after its ``Retry`` interval) or, with no
    retries left, moves it to the failed registry. Workers run the same cleanup in their
    maintenance; doing it here bounds the delay by this sweep's period. Idempotent.
    """
    reaped: dict[str, list[str]] = {}
    for name in ALL_QUEUES:
        registry = StartedJobRegistry(name, connection=connection)
        cutoff = time.time()
        expired = registry.get_expired_job_ids(cutoff)
        if not expired:
            continue
        registry.cleanup(cutoff)
        reaped[name] = expired
        log.warning("abandoned_jobs_reaped", queue=name, job_ids=expired)
    return reaped


def _job_status(connection: Redis, backtest_id: str) -> JobStatus | None:
    try:
        return Job.fetch(backtest_job_id(backtest_id), connection=connection).get_status()
    except NoSuchJobError:
        return None


def requeue_backtests() -> int:
    """Put back backtests whose worker died or whose job RQ lost; returns how many.

    First the jobs of dead workers are reaped on every queue (:func:`reap_abandoned_jobs`).
    Then, for each backtest Postgres says is queued (created over ``STALE_BACKTEST_S``
    ago) or running:

    - its job is started: a live worker is running it (its heartbeats say so);
    - its job waits (queued, or scheduled for a retry) while the row says running: the
      worker running it died and RQ will run it again; the row goes back to ``queued``;
    - its job is gone, finished or failed: a Redis flush, or a dead worker's job out of
      retries. It is queued again, or, after ``MAX_BACKTEST_ATTEMPTS`` runs that never
      finished, marked failed, so a backtest that kills its worker cannot loop forever.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("requeue_backtests runs as an RQ job")
    settings = current_app.extensions["botyard.settings"]
    reap_abandoned_jobs(job.connection)
    cutoff = datetime.now(UTC) - timedelta(seconds=STALE_BACKTEST_S)
    requeued = 0
    for backtest in stale_backtests(cutoff):
        status = _job_status(job.connection, str(backtest.id))
        if status == JobStatus.STARTED:
            continue
        if status in _WAITING:
            if backtest.status == "running":
                backtest.status = "queued"
                requeued += 1
                log.warning(
                    "backtest_worker_lost", backtest_id=str(backtest.id), attempts=backtest.attempts
                )
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
