"""The only worker module the API imports: it puts work on queues and never runs it.

Each helper fixes the queue, a deterministic ``job_id`` (so the same work is
never queued twice), the timeout and the retry policy.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from redis import Redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from settings import Settings
from workers.queues import BACKTESTS, BOTS, DEFAULT, NOTIFICATIONS, get_queue


def enqueue_purge_sessions(connection: Redis) -> Job:
    """Queue a session purge now (operators use this; the scheduler runs it hourly)."""
    return get_queue(DEFAULT, connection).enqueue(
        "workers.housekeeping.purge_sessions",
        job_id="housekeeping-purge-sessions-manual",
        job_timeout=300,
        retry=Retry(max=3, interval=[10, 30, 60]),
        result_ttl=3600,
    )


# Mail: at-least-once delivery; the backoff rides out an SMTP server restart.
MAIL_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])


def enqueue_password_reset(
    connection: Redis, email: str, ip: str | None = None, user_agent: str | None = None
) -> Job:
    """Queue the reset email for whatever account has ``email`` (the job looks it up).

    ``ip`` and ``user_agent`` (cut to 256 characters) of the request go into the
    account's ``password.reset_requested`` activity row, written by the job.
    """
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.account_mail.send_password_reset",
        email,
        ip=ip,
        user_agent=(user_agent or "")[:256] or None,
        job_timeout=60,
        retry=MAIL_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description="send_password_reset",  # keeps the address out of RQ's log lines
    )


def enqueue_email_change_link(connection: Redis, request_id: str) -> Job:
    """Queue the confirmation link of an email change request (the job makes the secret)."""
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.email_change.send_email_change_link",
        request_id,
        job_id=f"email-change-{request_id}",
        job_timeout=60,
        retry=MAIL_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description="send_email_change_link",
    )


def enqueue_email_changed_notice(connection: Redis, user_id: str, old_email: str) -> Job:
    """Queue the "your address was changed" notice to the old address."""
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.email_change.send_email_changed_notice",
        user_id,
        old_email,
        job_timeout=60,
        retry=MAIL_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description="send_email_changed_notice",
    )


def backtest_job_id(backtest_id: str) -> str:
    """One RQ job per backtest: enqueueing it again replaces, never duplicates."""
    return f"backtest-{backtest_id}"


def enqueue_backtest(connection: Redis, backtest_id: str, timeout: int) -> Job:
    """Queue a backtest run on the ``backtests`` queue."""
    return get_queue(BACKTESTS, connection).enqueue(
        "workers.backtests.run_backtest",
        backtest_id,
        job_id=backtest_job_id(backtest_id),
        job_timeout=timeout,
        retry=Retry(max=2, interval=[5, 30]),
        result_ttl=86400,
        failure_ttl=7 * 86400,
        description=f"run_backtest {backtest_id}",
    )


def cancel_backtest_job(connection: Redis, backtest_id: str) -> None:
    """Take a queued backtest's job off its queue (the job also checks the row itself)."""
    with contextlib.suppress(NoSuchJobError):
        Job.fetch(backtest_job_id(backtest_id), connection=connection).cancel()


# Live ticks must finish well within the next candle; a retry rides out a database blip.
TICK_TIMEOUT = 120
TICK_RETRY = Retry(max=3, interval=[2, 10, 30])


def tick_job_id(symbol: str, timeframe: str, candle_ts: int, chunk_index: int) -> str:
    """One RQ job per chunk of the runs trading ``symbol`` on ``timeframe`` at one candle."""
    return f"tick-{symbol}-{timeframe}-{candle_ts}-{chunk_index}"


def enqueue_tick(connection: Redis, run_ids: list[str], candle_ts: int, job_id: str) -> Job | None:
    """Queue ``tick_bots(run_ids, candle_ts)`` on ``bots``; None if ``job_id`` already exists.

    The job hash lives for ``result_ttl`` after it finishes; a later duplicate is still
    harmless because the tick skips runs already at ``candle_ts``.
    """
    if Job.exists(job_id, connection=connection):
        return None
    return get_queue(BOTS, connection).enqueue(
        "workers.ticks.tick_bots",
        run_ids,
        candle_ts,
        job_id=job_id,
        job_timeout=TICK_TIMEOUT,
        retry=TICK_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"tick_bots {job_id} ({len(run_ids)} runs)",
    )


def reconciliation_job_id(run_id: str, period: str) -> str:
    """One RQ job per run and period: a reconciliation asked for twice is queued once."""
    return f"reconcile-{run_id}-{period}"


# A job in one of these states will still run: asking again queues nothing.
_WAITING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def _job_in(connection: Redis, job_id: str, states: tuple[JobStatus, ...]) -> Job | None:
    """The job ``job_id`` if it exists and is in one of ``states``, else None."""
    with contextlib.suppress(NoSuchJobError):
        job = Job.fetch(job_id, connection=connection)
        if job.get_status(refresh=False) in states:
            return job
    return None


def enqueue_reconciliation(connection: Redis, run_id: str, period: str) -> Job | None:
    """Queue ``reconcile_run(run_id, period)`` on ``default``; None if it is already waiting.

    A finished job's hash (kept for ``result_ttl``) does not block a new one: the run may
    have new candles since. Two callers racing past the check queue the same job id twice,
    which is harmless: the job is idempotent.
    """
    job_id = reconciliation_job_id(run_id, period)
    if _job_in(connection, job_id, _WAITING) is not None:
        return None
    return get_queue(DEFAULT, connection).enqueue(
        "workers.reconciliation.reconcile_run",
        run_id,
        period,
        job_id=job_id,
        job_timeout=900,
        retry=Retry(max=2, interval=[10, 60]),
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"reconcile_run {run_id} {period}",
    )


def export_job_id(export_id: str) -> str:
    """One RQ job per data export."""
    return f"export-{export_id}"


def enqueue_export(connection: Redis, export_id: str) -> Job:
    """Queue the build of a data export on ``default`` (a ready export is never rebuilt)."""
    return get_queue(DEFAULT, connection).enqueue(
        "workers.exports.build_export",
        export_id,
        job_id=export_job_id(export_id),
        job_timeout=900,
        retry=Retry(max=2, interval=[30, 300]),
        result_ttl=86400,
        failure_ttl=7 * 86400,
        description=f"build_export {export_id}",
    )


# One ping per webhook per this many seconds: a ping is a check, not a way to send traffic.
WEBHOOK_PING_INTERVAL_S = 10


def enqueue_webhook_ping(connection: Redis, webhook_id: str, ping_id: str) -> Job | None:
    """Queue one signed test ``ping`` to a webhook (no retries: a ping is a one-off check).

    None when the webhook was pinged less than ``WEBHOOK_PING_INTERVAL_S`` ago.
    """
    fresh = connection.set(
        f"webhook-ping:{webhook_id}", ping_id, nx=True, ex=WEBHOOK_PING_INTERVAL_S
    )
    if not fresh:
        return None
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.webhooks.ping_webhook",
        webhook_id,
        ping_id,
        job_id=f"webhook-ping-{ping_id}",
        job_timeout=60,
        result_ttl=3600,
        failure_ttl=86400,
        description=f"ping_webhook {webhook_id}",
    )


def install_outbox_relay(connection: Redis, settings: Settings | None = None) -> None:
    """After each commit, queue the deliveries and publish the live events it staged.

    ``settings`` bounds the users' events streams (their defaults when None).
    """
    from workers.outbox_relay import install  # noqa: PLC0415 - the API's one way in

    install(connection, settings)


# The on-demand recompute's current job: a second request while it waits gets the same job.
RECOMPUTE_KEY = "botyard:leaderboards:recompute-job"
# A started recompute does not hold a new one back: the data may have changed since it began.
RECOMPUTE_WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def enqueue_recompute(connection: Redis) -> tuple[Job, bool]:
    """Queue a leaderboard recompute on ``default``; (the job, whether it is a new one).

    While an on-demand recompute is still waiting in the queue, asking again returns it.
    """
    current = connection.get(RECOMPUTE_KEY)
    if isinstance(current, bytes):
        waiting = _job_in(connection, current.decode(), RECOMPUTE_WAITING)
        if waiting is not None:
            return waiting, False
    job = get_queue(DEFAULT, connection).enqueue(
        "workers.leaderboards.recompute_leaderboards",
        job_id=f"leaderboards-recompute-{uuid.uuid4().hex}",
        job_timeout=600,
        retry=Retry(max=2, interval=[10, 60]),
        result_ttl=86400,
        failure_ttl=7 * 86400,
        description="recompute_leaderboards (on demand)",
    )
    connection.set(RECOMPUTE_KEY, job.id, ex=86400)
    return job, True


def recompute_status(connection: Redis, job_id: str) -> dict[str, Any] | None:
    """A recompute job's status and, once finished, its result; None if unknown or not one."""
    if not job_id.startswith("leaderboards-recompute-"):
        return None
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None
    found = job.get_status(refresh=False)
    status = found.value if found is not None else "unknown"
    result = job.return_value() if status == "finished" else None
    return {
        "job_id": job.id,
        "status": status,
        "generation_id": result.get("generation_id") if isinstance(result, dict) else None,
        "activated": result.get("activated") if isinstance(result, dict) else None,
        "enqueued_at": job.enqueued_at,
        "ended_at": job.ended_at,
    }
