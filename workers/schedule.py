"""Periodic jobs and the scheduler process: ``python -m workers.schedule``.

``PERIODIC`` is the one list of periodic jobs. At start-up the scheduler
reconciles rq-scheduler's registry with it by job id: missing jobs are added,
changed ones replaced, ones no longer listed removed; unchanged ones are left
alone, so restarting (or starting twice) never duplicates anything.

Only one scheduler enqueues at a time: a leader key in Redis, renewed every
loop, makes any other instance idle until the leader stops renewing it.

The loop is ours, not rq-scheduler's ``run``, so that Redis going away never ends the
process: it waits with backoff and goes on (workers/outage.py). Each pass re-registers
the scheduler if Redis forgot it, and the leader checks with one ``ZMSCORE`` that every
periodic job is still scheduled, reconciling when one is missing (a flush, a restart
without persistence, or a pass cut short between rq-scheduler's enqueue and re-schedule).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from redis import Redis
from rq_scheduler import Scheduler

from settings import Settings
from workers.context import create_worker_app
from workers.outage import ServiceWatch
from workers.queues import DEFAULT, NOTIFICATIONS, redis_connection
from workers.transient import backing_service

log = structlog.get_logger(__name__)

JOB_PREFIX = "periodic-"
LEADER_KEY = "botyard:scheduler:leader"
POLL_SECONDS = 5

_RENEW_IF_MINE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('expire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_IF_MINE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class PeriodicJob:
    """A job rq-scheduler enqueues every ``interval`` seconds; args must be JSON-safe."""

    id: str
    func: str
    interval: int
    queue: str = DEFAULT
    timeout: int = 300
    args: tuple[Any, ...] = ()

    @property
    def job_id(self) -> str:
        """The id under which rq-scheduler stores this job."""
        return JOB_PREFIX + self.id


PERIODIC: tuple[PeriodicJob, ...] = (
    PeriodicJob(id="purge-sessions", func="workers.housekeeping.purge_sessions", interval=3600),
    PeriodicJob(
        id="purge-reset-tokens", func="workers.housekeeping.purge_reset_tokens", interval=3600
    ),
    PeriodicJob(id="requeue-backtests", func="workers.housekeeping.requeue_backtests", interval=60),
    PeriodicJob(
        id="apply-bot-schedules", func="workers.bot_schedules.apply_schedules", interval=30
    ),
    PeriodicJob(id="catch-up-bots", func="workers.catchup.catch_up", interval=60),
    PeriodicJob(
        id="pause-orphaned-mirrors", func="workers.mirrors.pause_orphaned_mirrors", interval=60
    ),
    PeriodicJob(id="purge-tick-logs", func="workers.housekeeping.purge_tick_logs", interval=3600),
    PeriodicJob(id="purge-exports", func="workers.exports.purge_exports", interval=3600),
    PeriodicJob(
        id="erase-due-accounts",
        func="workers.lifecycle.erase_due_accounts",
        interval=3600,
        timeout=3000,
    ),
    PeriodicJob(
        id="purge-email-changes", func="workers.email_change.purge_email_changes", interval=3600
    ),
    PeriodicJob(id="purge-activities", func="workers.activity.purge_activities", interval=86400),
    PeriodicJob(
        id="sweep-deliveries",
        func="workers.notify.sweep_deliveries",
        interval=60,
        queue=NOTIFICATIONS,
    ),
    PeriodicJob(
        id="send-digests", func="workers.digest.send_digests", interval=600, queue=NOTIFICATIONS
    ),
    # Intervals from the settings (periodic_jobs); these are the defaults.
    PeriodicJob(
        id="reconcile-public-bots",
        func="workers.reconciliation.reconcile_public_bots",
        interval=3600,
    ),
    PeriodicJob(
        id="refresh-performance", func="workers.performance.refresh_performance", interval=60
    ),
    PeriodicJob(
        id="recompute-leaderboards",
        func="workers.leaderboards.recompute_leaderboards",
        interval=15 * 60,
        timeout=600,
    ),
)


def periodic_jobs(settings: Settings) -> tuple[PeriodicJob, ...]:
    """``PERIODIC`` with the intervals the settings choose (same ids, so same reconciling)."""
    intervals = {
        "refresh-performance": settings.performance_refresh_seconds,
        "reconcile-public-bots": settings.reconciliation_interval_minutes * 60,
        "recompute-leaderboards": settings.leaderboard_interval_minutes * 60,
    }
    return tuple(replace(spec, interval=intervals.get(spec.id, spec.interval)) for spec in PERIODIC)


def _same(job: Any, spec: PeriodicJob) -> bool:
    return bool(
        job.func_name == spec.func
        and job.meta.get("interval") == spec.interval
        and job.origin == spec.queue
        and tuple(job.args) == spec.args
        and job.timeout == spec.timeout
    )


def reconcile(scheduler: Scheduler, periodic: tuple[PeriodicJob, ...] = PERIODIC) -> dict[str, int]:
    """Make rq-scheduler's registry match ``periodic``; returns counts by action."""
    counts = {"added": 0, "replaced": 0, "kept": 0, "removed": 0}
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
    wanted = {spec.job_id: spec for spec in periodic}
    for job_id, job in existing.items():
        if job_id not in wanted:
            scheduler.cancel(job)
            counts["removed"] += 1
    for job_id, spec in wanted.items():
        current = existing.get(job_id)
        if current is not None and _same(current, spec):
            counts["kept"] += 1
            continue
        if current is not None:
            scheduler.cancel(current)
            counts["replaced"] += 1
        else:
            counts["added"] += 1
        scheduler.schedule(
            scheduled_time=datetime.now(UTC),
            func=spec.func,
            args=list(spec.args),
            interval=spec.interval,
            repeat=None,
            id=job_id,
            queue_name=spec.queue,
            timeout=spec.timeout,
            result_ttl=spec.interval * 2,
        )
    return counts


class LeaderScheduler(Scheduler):  # type: ignore[misc]
    """rq-scheduler that only enqueues while it holds the leader key."""

    _registered = False  # set once this scheduler's key was first written
    _reconciled = False  # set once this scheduler reconciled the periodic jobs as leader
    periodic: tuple[PeriodicJob, ...] = PERIODIC  # build_scheduler applies the settings

    def _holds_leadership(self) -> bool:
        ttl = int(self._interval) * 3 + 5
        conn: Redis = self.connection
        if conn.set(LEADER_KEY, self.name, nx=True, ex=ttl):
            log.info("scheduler_became_leader", name=self.name)
            return True
        return bool(conn.eval(_RENEW_IF_MINE, 1, LEADER_KEY, self.name, ttl))

    def acquire_lock(self) -> bool:
        """Take rq-scheduler's per-loop lock only when we are the leader."""
        if not self._holds_leadership():
            return False
        return bool(super().acquire_lock())

    def register_death(self) -> None:
        """Give up leadership at once so a standby can take over."""
        self.connection.eval(_RELEASE_IF_MINE, 1, LEADER_KEY, self.name)
        super().register_death()

    def heartbeat(self) -> None:
        """Extend this scheduler's key; register it again if Redis no longer has it."""
        ttl = int(self._interval) + 10
        if self.connection.expire(self.key, ttl):
            return
        self.connection.hset(self.key, "birth", time.time())
        self.connection.expire(self.key, ttl)
        if self._registered:
            log.warning("scheduler_reregistered", name=self.name)
        self._registered = True

    def ensure_periodic(self) -> None:
        """Reconcile the periodic jobs on the first pass, then whenever one is missing."""
        if not self._reconciled:
            counts = reconcile(self, self.periodic)
            self._reconciled = True
            log.info("periodic_jobs_reconciled", **counts)
            return
        ids = [spec.job_id for spec in self.periodic]
        scores = self.connection.zmscore(self.scheduled_jobs_key, ids)
        missing = [job_id for job_id, score in zip(ids, scores, strict=True) if score is None]
        if missing:
            counts = reconcile(self, self.periodic)
            log.warning("periodic_jobs_restored", missing=len(missing), **counts)

    def run(self, burst: bool = False) -> None:
        """Enqueue due jobs every ``interval`` seconds while leader, whatever Redis does."""
        self._install_signal_handlers()
        watch = ServiceWatch("scheduler")
        try:
            while True:
                started = time.monotonic()
                try:
                    self.heartbeat()
                    self.pass_once()
                except Exception as exc:
                    if backing_service(exc) is None:
                        raise
                    watch.pause(exc)
                    continue
                watch.recovered()
                if burst:
                    break
                time.sleep(max(0.0, self._interval - (time.monotonic() - started)))
        finally:
            # Redis may be away: then the lock and the leader key expire on their own.
            with suppress(Exception):
                self.remove_lock()
            with suppress(Exception):
                self.register_death()

    def pass_once(self) -> None:
        """One pass: enqueue what is due if we lead, checking the periodic jobs first."""
        if not self.acquire_lock():
            self.log.warning("Lock already taken - skipping run")
            return
        try:
            self.ensure_periodic()
            self.enqueue_jobs()
        finally:
            self.remove_lock()

    def _install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT leave the loop at once; ``run`` cleans up as well as Redis allows."""

        def stop(_signum: int, _frame: object) -> None:
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)


def build_scheduler(settings: Settings, connection: Redis | None = None) -> LeaderScheduler:
    """A leader-elected scheduler polling every ``POLL_SECONDS``, with the settings' jobs."""
    scheduler = LeaderScheduler(
        queue_name=DEFAULT,
        connection=connection or redis_connection(settings),
        interval=POLL_SECONDS,
        name=f"botyard-{os.uname().nodename}-{os.getpid()}",
    )
    scheduler.periodic = periodic_jobs(settings)
    return scheduler


def main() -> int:
    """Run the scheduler loop until stopped; the first pass as leader reconciles the jobs."""
    app = create_worker_app()
    scheduler = build_scheduler(app.extensions["botyard.settings"])
    log.info("scheduler_starting", name=scheduler.name, jobs=len(PERIODIC))
    scheduler.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
