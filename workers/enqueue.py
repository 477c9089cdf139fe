"""The only worker module the API imports: it puts work on queues and never runs it.

Each helper fixes the queue, a deterministic ``job_id`` (so the same work is
never queued twice), the timeout and the retry policy.
"""

from __future__ import annotations

import contextlib

from redis import Redis
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job

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


def enqueue_password_reset(connection: Redis, email: str) -> Job:
    """Queue the reset email for whatever account has ``email`` (the job looks it up)."""
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.account_mail.send_password_reset",
        email,
        job_timeout=60,
        retry=MAIL_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description="send_password_reset",  # keeps the address out of RQ's log lines
    )


def enqueue_password_changed(connection: Redis, user_id: str) -> Job:
    """Queue the "your password was changed" notice."""
    return get_queue(NOTIFICATIONS, connection).enqueue(
        "workers.account_mail.send_password_changed",
        user_id,
        job_timeout=60,
        retry=MAIL_RETRY,
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description="send_password_changed",
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


def install_outbox_relay(connection: Redis, settings: Settings | None = None) -> None:
    """After each commit, queue the deliveries and publish the live events it staged.

    ``settings`` bounds the users' events streams (their defaults when None).
    """
    from workers.outbox_relay import install  # noqa: PLC0415 - the API's one way in

    install(connection, settings)
