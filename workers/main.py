"""Worker entry point: ``python -m workers.main [--burst] [--queues bots,default] [--fork]``.

Jobs run inside an app context with structlog configured; each job gets its
own database session, removed when it ends.

By default jobs run in the worker process itself. Forking a work horse per job
(``--fork``, RQ's default) isolates each job from the others but costs every job a
fork, a new database connection and a cold start, about 70 ms on a one-year
backtest here (docs/performance.md), which is more than the job's own database
work. Without it, isolation comes from the job timeout (SIGALRM in the worker),
the process supervisor restarting a worker that dies, and the sweeps that
re-queue what a dead worker was running. With ``--fork`` the pool inherited from
the parent is dropped in the child.

Liveness (``workers/liveness.py``): a running job's lease in RQ's started registry lasts
``WORKER_HEARTBEAT_TTL`` seconds and is renewed every third of that, so the sweep finds a
dead worker's jobs within that time; and the children the worker forks (RQ's scheduler, a
work horse) get SIGTERM from the kernel when it dies, even by SIGKILL.

A Redis outage never ends the worker: :class:`workers.resilient.OutageMixin` waits it
out, RQ's scheduler child included, and registers the worker again if Redis lost it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import structlog
from flask import Flask
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.queue import Queue

from models import db
from models.leaderboards.preview_cache import set_preview_redis
from workers import account_mail, backtests, bot_schedules, catchup, housekeeping, ticks
from workers.context import create_worker_app
from workers.enqueue import install_outbox_relay
from workers.liveness import JobHeartbeat, beat_interval, children_die_with_worker
from workers.queues import ALL_QUEUES, get_queue, redis_connection
from workers.resilient import OutageMixin

log = structlog.get_logger(__name__)

# Imported here, in the parent, so every forked work horse starts with them loaded instead
# of importing the engine again for each job (tens of milliseconds a job).
JOB_MODULES = (account_mail, backtests, bot_schedules, catchup, housekeeping, ticks)

# RQ's maintenance (its registries' cleanup, and starting this worker's scheduler when the
# one that held the lock has gone) runs every 10 minutes by default; once a minute, a
# scheduled retry never waits long for a scheduler after the worker that ran one died.
MAINTENANCE_INTERVAL_S = 60


class AppContextMixin:
    """Run every job inside the worker's app context, with the job bound to the logs."""

    flask_app: Flask
    parent_pid: int
    heartbeat_ttl: int

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        """A started job's lease: short, because heartbeats renew it while the job runs."""
        return self.heartbeat_ttl

    def work(self, *args: Any, burst: bool = False, **kwargs: Any) -> bool:
        self.bursting = burst
        return bool(super().work(*args, burst=burst, **kwargs))  # type: ignore[misc]

    def subscribe(self) -> None:
        """Listen for RQ's commands (shutdown, kill the horse), except in a burst.

        A burst ends by itself; stopping RQ 3's command thread at its end sometimes waits
        out the thread's whole 60 s poll (a redis-py and RQ race), 60 s for nothing.
        """
        if not getattr(self, "bursting", False):
            super().subscribe()  # type: ignore[misc]

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        if os.getpid() != self.parent_pid:
            # A forked work horse must not reuse the parent's pooled sockets.
            db.get_engine().dispose(close=False)
        with self.flask_app.app_context():
            structlog.contextvars.bind_contextvars(job_id=job.id, job=job.func_name)
            try:
                # RQ 3 adds an execution argument; pass through whatever this RQ gives.
                return bool(super().perform_job(job, queue, *args, **kwargs))  # type: ignore[misc]
            finally:
                db.end_session()
                structlog.contextvars.unbind_contextvars("job_id", "job")


class AppWorker(OutageMixin, AppContextMixin, Worker):
    """Forks a work horse per job (``--fork``): isolation from crashes, at a cost per job."""


class AppSimpleWorker(OutageMixin, AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: the default, and what tests use.

    Nothing else runs while the job does, so a thread renews the job's lease (RQ's
    ``--fork`` worker does it from its work-horse monitoring loop).
    """

    def perform_job(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> bool:
        execution = args[0] if args else self.execution
        if execution is None:  # (RQ always prepares one before it performs a job)
            return bool(super().perform_job(job, queue, *args, **kwargs))

        def beat() -> None:
            self.maintain_heartbeats(job, execution)

        with JobHeartbeat(beat, beat_interval(self.heartbeat_ttl), job.id):
            return super().perform_job(job, queue, *args, **kwargs)


def build_worker(
    app: Flask, queue_names: tuple[str, ...], simple: bool = False, **kwargs: Any
) -> AppWorker | AppSimpleWorker:
    """A worker bound to ``app`` listening on ``queue_names`` in priority order."""
    settings = app.extensions["botyard.settings"]
    connection = redis_connection(settings)
    install_outbox_relay(connection, settings)
    # A recompute job's swap moves the cached leaderboard preview on (preview_cache.py).
    set_preview_redis(connection)
    queues = [get_queue(name, connection) for name in queue_names]
    cls: type[AppWorker] | type[AppSimpleWorker] = AppSimpleWorker if simple else AppWorker
    ttl = settings.worker_heartbeat_ttl
    options: dict[str, Any] = {
        "worker_ttl": ttl,
        "job_monitoring_interval": max(1, int(beat_interval(ttl))),  # an alarm(): whole seconds
        "maintenance_interval": MAINTENANCE_INTERVAL_S,
    }
    worker = cls(queues, connection=connection, **{**options, **kwargs})
    worker.heartbeat_ttl = ttl
    worker.flask_app = app
    worker.parent_pid = os.getpid()
    return worker


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and work until stopped (or until the queues are empty with --burst)."""
    parser = argparse.ArgumentParser(description="Botyard RQ worker")
    parser.add_argument("--burst", action="store_true", help="drain the queues, then exit")
    parser.add_argument("--queues", default=",".join(ALL_QUEUES), help="comma-separated")
    parser.add_argument(
        "--fork", action="store_true", help="fork a work horse per job (isolation, slower)"
    )
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.queues.split(",") if n.strip())
    unknown = [n for n in names if n not in ALL_QUEUES]
    if unknown:
        parser.error(f"unknown queue(s): {', '.join(unknown)}; known: {', '.join(ALL_QUEUES)}")
    app = create_worker_app()
    children_die_with_worker()
    worker = build_worker(app, names, simple=not args.fork)
    log.info(
        "worker_starting", queues=list(names), burst=args.burst, fork=args.fork, name=worker.name
    )
    # with_scheduler: RQ moves jobs whose retry waits (Retry intervals) back onto their queue.
    worker.work(burst=args.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
