"""Periodic jobs are reconciled idempotently, and only one scheduler leads."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis
from structlog.testing import capture_logs

from settings import Settings
from tests.helpers import REDIS_URL
from workers.schedule import (
    LEADER_KEY,
    PERIODIC,
    LeaderScheduler,
    PeriodicJob,
    build_scheduler,
    reconcile,
)


def _scheduler(redis: Redis, name: str = "a") -> LeaderScheduler:
    return LeaderScheduler(queue_name="default", connection=redis, interval=5, name=name)


def _ids(scheduler: Any) -> list[str]:
    return sorted(job.id for job in scheduler.get_jobs())


def test_reconcile_registers_once(redis: Redis) -> None:
    scheduler = _scheduler(redis)
    assert reconcile(scheduler) == {"added": len(PERIODIC), "replaced": 0, "kept": 0, "removed": 0}
    assert reconcile(scheduler) == {"added": 0, "replaced": 0, "kept": len(PERIODIC), "removed": 0}
    assert _ids(scheduler) == sorted(spec.job_id for spec in PERIODIC)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs["periodic-purge-sessions"].func_name == "workers.housekeeping.purge_sessions"
    assert jobs["periodic-purge-reset-tokens"].meta["interval"] == 3600


def test_reconcile_replaces_changed_and_removes_dropped(redis: Redis) -> None:
    scheduler = _scheduler(redis)
    reconcile(
        scheduler,
        (
            PeriodicJob(id="a", func="os.getpid", interval=60),
            PeriodicJob(id="b", func="os.getpid", interval=60),
        ),
    )
    counts = reconcile(scheduler, (PeriodicJob(id="a", func="os.getpid", interval=120),))
    assert counts == {"added": 0, "replaced": 1, "kept": 0, "removed": 1}
    assert _ids(scheduler) == ["periodic-a"]
    assert next(iter(scheduler.get_jobs())).meta["interval"] == 120


def test_periodic_job_arguments_are_json_safe() -> None:
    # rq-scheduler pickles jobs; keeping args JSON-safe keeps them portable and inspectable.
    for spec in PERIODIC:
        assert json.loads(json.dumps(list(spec.args))) == list(spec.args)
        module, _, func = spec.func.rpartition(".")
        assert callable(getattr(__import__(module, fromlist=[func]), func))


def test_only_one_scheduler_leads(redis: Redis) -> None:
    leader, standby = _scheduler(redis, "leader"), _scheduler(redis, "standby")
    assert leader.acquire_lock() is True
    leader.remove_lock()
    assert standby.acquire_lock() is False  # leadership is held even between loops
    assert leader.acquire_lock() is True  # and renewed by the leader
    leader.remove_lock()
    leader.register_death()
    assert standby.acquire_lock() is True  # a standby takes over once the leader stops


def test_build_scheduler_names_are_unique_per_process() -> None:
    settings = Settings(env="test", redis_url=REDIS_URL or "")
    scheduler = build_scheduler(settings)
    assert scheduler.name.startswith("botyard-")
    assert scheduler._interval == 5


def test_the_leader_registers_the_periodic_jobs_again_after_redis_lost_them(
    redis: Redis,
) -> None:
    scheduler = _scheduler(redis)
    with capture_logs() as logs:
        scheduler.heartbeat()
        scheduler.pass_once()
        assert _ids(scheduler) == sorted(spec.job_id for spec in PERIODIC)
        redis.flushdb()  # Redis restarted without persistence
        scheduler.heartbeat()
        scheduler.pass_once()
    assert _ids(scheduler) == sorted(spec.job_id for spec in PERIODIC)
    assert redis.exists(scheduler.key)
    assert redis.get(LEADER_KEY) == scheduler.name.encode()
    events = [e["event"] for e in logs]
    assert events == [
        "scheduler_became_leader",
        "periodic_jobs_reconciled",
        "scheduler_reregistered",
        "scheduler_became_leader",
        "periodic_jobs_restored",
    ]
    with capture_logs() as logs:
        scheduler.pass_once()  # nothing missing: one ZMSCORE, nothing else
    assert logs == []
