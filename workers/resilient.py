"""An RQ worker that waits out a Redis outage instead of ending (docs/operations.md).

RQ's own work loop retries only its blocking dequeue. Anywhere else, a Redis error (the
heartbeat after a job, the suspension check, registry maintenance, a job's bookkeeping,
``register_death`` on the way out) reaches the loop's catch-all, which logs "found an
unhandled exception, quitting" and ends the worker; the scheduler child that
``with_scheduler`` forks dies at its next heartbeat and is restarted only by the
ten-minute maintenance pass. :class:`OutageMixin` wraps those steps: a Redis error makes
the worker wait, with backoff and one log line each way, and then do the step again.

After a flush (or a restart without persistence) the worker's registration is gone; the
first heartbeat that finds its key missing writes it again (``worker_reregistered``). A
job whose bookkeeping failed mid-outage is left to RQ's lease and the sweeps: its effects
are idempotent, and Redis may no longer know it at all.
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import structlog
from redis.client import Pipeline
from rq import worker_registration
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from workers.outage import Backoff, ServiceWatch
from workers.transient import backing_service

log = structlog.get_logger(__name__)


def _redis_error(exc: BaseException) -> bool:
    return backing_service(exc) == "redis"


class OutageScheduler(RQScheduler):
    """RQ's scheduler child (moves due retries back onto their queues), outage-proof."""

    def work(self) -> None:
        """RQ's loop, except that a Redis error waits and retries instead of ending it."""
        rq: Any = self  # RQScheduler's methods carry no annotations
        rq._install_signal_handlers()
        watch = ServiceWatch("worker-scheduler")
        register = True
        while not self._stop_requested:
            try:
                if register:
                    self.register_birth()  # idempotent; rewrites what a flush lost
                    register = False
                if self.should_reacquire_locks:
                    rq.acquire_locks()
                rq.heartbeat()
                rq.enqueue_scheduled_jobs()
            except Exception as exc:
                if not _redis_error(exc):
                    raise
                watch.pause(exc, stop=lambda: self._stop_requested)
                register = True
                continue
            watch.recovered()
            time.sleep(self.interval)
        with suppress(Exception):  # Redis may be away: the lock and the key expire
            rq.stop()


class OutageMixin:
    """Mixed into an RQ worker class (before it): Redis outages are waited out, not fatal."""

    _outage_watch: ServiceWatch | None = None
    _stop_requested: bool
    connection: Any
    key: str
    worker_ttl: int
    name: str
    is_horse: bool

    @property
    def outage_watch(self) -> ServiceWatch:
        """This worker's view of Redis (made on first use)."""
        if self._outage_watch is None:
            self._outage_watch = ServiceWatch("worker")
        return self._outage_watch

    def through_outage(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``step``; while Redis is away wait and run it again. A stop request ends it."""
        while True:
            try:
                result = step(*args, **kwargs)
            except Exception as exc:
                if not _redis_error(exc):
                    raise
                if self.stop_requested:
                    raise StopRequested from exc
                self.outage_watch.pause(exc, stop=lambda: self.stop_requested)
                continue
            self.outage_watch.recovered()
            return result

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for (False while RQ's constructor is still running)."""
        return bool(getattr(self, "_stop_requested", False))

    def _set_ip_address(self, connection: Any) -> None:
        # Called by RQ's constructor: a worker started while Redis is away waits for it.
        self.through_outage(super()._set_ip_address, connection)  # type: ignore[misc]

    def register_birth(self) -> None:
        self.through_outage(super().register_birth)  # type: ignore[misc]

    def subscribe(self) -> None:
        self.through_outage(super().subscribe)  # type: ignore[misc]

    def set_state(self, state: str, pipeline: Pipeline | None = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)  # type: ignore[misc]
        else:
            self.through_outage(super().set_state, state)  # type: ignore[misc]

    def check_for_suspension(self, burst: bool) -> None:
        self.through_outage(super().check_for_suspension, burst)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        self.through_outage(super().run_maintenance_tasks)  # type: ignore[misc]

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat; outside a pipeline it also re-registers a worker Redis forgot."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)  # type: ignore[misc]
            return
        self.through_outage(self._heartbeat_or_register, timeout)

    def _heartbeat_or_register(self, timeout: int | None) -> None:
        with self.connection.pipeline() as pipe:
            super().heartbeat(timeout, pipeline=pipe)  # type: ignore[misc]
            created = pipe.execute()[0]  # HSET's count of new fields: 1 if the key was gone
        if created:
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())  # type: ignore[attr-defined]
                worker_registration.register(self, pipe)  # type: ignore[arg-type]
                pipe.expire(self.key, self.worker_ttl + 60)
                pipe.execute()
            log.warning("worker_reregistered", name=self.name)

    def _start_scheduler(self, burst: bool = False, *args: Any, **kwargs: Any) -> None:
        """RQ's, with :class:`OutageScheduler` as the child and the lock taken through outages."""
        if burst:
            self.through_outage(super()._start_scheduler, burst, *args, **kwargs)  # type: ignore[misc]
            return
        worker: Any = self
        worker.scheduler = OutageScheduler(
            worker.queues,
            connection=self.connection,
            logging_level=worker.log.level,
            serializer=worker.serializer,
        )
        self.through_outage(worker.scheduler.acquire_locks)
        if worker.scheduler.acquired_locks:
            worker.scheduler.start()

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job; if Redis fails its bookkeeping, wait for Redis and move on."""
        try:
            super().execute_job(job, queue)  # type: ignore[misc]
        except Exception as exc:
            if not _redis_error(exc):
                raise
            log.warning("job_bookkeeping_lost", job_id=job.id, error_type=type(exc).__name__)
            horse: Any = self
            if getattr(horse, "_horse_pid", 0):
                horse.wait_for_horse()  # never two jobs at once: let the horse finish first
            self.outage_watch.failed(exc)
            self.through_outage(self.connection.ping)

    def teardown(self) -> None:
        """RQ's teardown, as far as Redis allows: the worker's key expires on its own."""
        try:
            super().teardown()  # type: ignore[misc]
        except Exception as exc:
            if not _redis_error(exc):
                raise
            log.warning("worker_teardown_incomplete", error_type=type(exc).__name__)

    def _pubsub_exception_handler(self, exc: Exception, *args: Any) -> None:
        """The command channel's thread: wait quietly while Redis is away (the loop logs it)."""
        if not _redis_error(exc):
            raise exc
        delays: Backoff = self.__dict__.setdefault("_pubsub_backoff", Backoff())
        time.sleep(delays.next())
