"""A worker SIGKILLed mid-backtest, against real processes: its children die with it, and the
sweep finds the backtest from the worker's missed heartbeats and re-queues it.

The worker runs with ``WORKER_HEARTBEAT_TTL`` of a few seconds, so "dead" comes quickly. To
hold a backtest mid-run, the test keeps a SHARE lock on ``backtest_equity``: the job claims
the row, runs the engine, then waits inside its save. The sweep (``requeue_backtests``) runs
in this process through an RQ burst worker, as a worker runs it when the scheduler queues it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler

from models import db as database
from models.backtests.backtests import Limits, build_spec, create_backtest
from models.people.preferences import trading_defaults
from tests.workers.processes import (
    DAY,
    END,
    HOUR,
    NEWEST,
    SPAN_START,
    Procs,
    World,
    world_database,
)
from workers.enqueue import TICK_RETRY, enqueue_backtest, enqueue_tick, tick_job_id
from workers.main import build_worker
from workers.queues import BACKTESTS, BOTS, DEFAULT, get_queue

TTL = 6  # WORKER_HEARTBEAT_TTL of the spawned workers: a beat every 2 s


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_database() as created:
        yield created


@pytest.fixture
def procs(world: World, redis: Redis, tmp_path: Path) -> Iterator[Procs]:
    started = Procs({**world.env, "WORKER_HEARTBEAT_TTL": str(TTL)}, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def create(world: World) -> str:
    """A queued backtest over the world's candles, committed as the API does."""
    fields = {
        "symbol": "BTC-USD",
        "timeframe": "1h",
        "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
        "start": SPAN_START - 2 * DAY,
        "end": END,
    }
    with world.app.app_context():
        limits = Limits(max_bars=10**6, max_days=100, quota=100)
        spec = build_spec(fields, None, END, limits, trading_defaults(world.owner_id))
        backtest_id = str(create_backtest(world.owner_id, spec, quota=100).id)
        database.session.commit()
        database.session.remove()
    return backtest_id


def row(world: World, backtest_id: str) -> tuple[str, int]:
    """The backtest's status and attempts, as committed."""
    query = sa.text("SELECT status, attempts FROM backtests WHERE id = :id")
    with world.engine.connect() as conn:
        status, attempts = conn.execute(query, {"id": uuid.UUID(backtest_id)}).one()
    return str(status), int(attempts)


@contextmanager
def saves_blocked(world: World) -> Iterator[None]:
    """A SHARE lock on ``backtest_equity`` until the block exits: a save waits on it."""
    with world.engine.connect() as conn:
        conn.execute(sa.text("LOCK TABLE backtest_equity IN SHARE MODE"))
        try:
            yield
        finally:
            conn.rollback()


def waiting_save(world: World) -> bool:
    """True once a session waits on the lock to write a backtest's equity."""
    query = sa.text(
        """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND wait_event_type = 'Lock' AND query ILIKE '%backtest_equity%'
        """
    )
    with world.engine.connect() as conn:
        return bool(conn.scalar(query))


def sweep(world: World, redis: Redis) -> int:
    """Run the ``requeue-backtests`` periodic job as a worker does; returns its result."""
    job = get_queue(DEFAULT, redis).enqueue("workers.housekeeping.requeue_backtests")
    assert build_worker(world.app, (DEFAULT,), simple=True).work(burst=True) is True
    result = Job.fetch(job.id, connection=redis).latest_result()
    assert result is not None and result.type == result.Type.SUCCESSFUL, result
    return int(result.return_value)


def children(pid: int) -> set[int]:
    """The pids of the processes ``pid`` has forked and not yet reaped."""
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with suppress(OSError):
            found |= {int(child) for child in path.read_text().split()}
    return found


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def lease(registry: StartedJobRegistry, job: Job) -> float:
    """The time at which the job's current execution counts as abandoned."""
    [(_member, score)] = registry.connection.zrange(registry.key, 0, -1, withscores=True)
    assert _member.decode().startswith(f"{job.id}:")
    return float(score)


def kill_worker(
    procs: Procs, worker: subprocess.Popen[bytes], queue: str, redis: Redis, children_expected: int
) -> None:
    """SIGKILL the worker alone (not its process group); its children must exit too."""

    def forked() -> set[int] | None:
        found = children(worker.pid)
        return found if len(found) == children_expected else None

    kids = procs.wait_for(forked, 30, f"the worker's {children_expected} child process(es)")
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL
    procs.wait_for(lambda: all(gone(pid) for pid in kids), 90, "the children to exit")
    # RQ's scheduler stopped cleanly: it released its lock for the next worker's scheduler.
    assert not redis.exists(RQScheduler.get_locking_key(queue))


def wait_abandoned(procs: Procs, registry: StartedJobRegistry, job: Job) -> None:
    """Wait until no heartbeat has renewed the job's lease for a whole lease."""
    procs.wait_for(
        lambda: job.id in registry.get_expired_job_ids(), 3 * TTL, "the dead worker's lease to end"
    )


def status(job: Job) -> str:
    job.refresh()
    return job.get_status(refresh=False).value


@pytest.mark.parametrize("fork", [False, True], ids=["in-process", "work-horse"])
def test_a_sigkilled_worker_s_backtest_is_requeued_from_missed_heartbeats(
    world: World, redis: Redis, procs: Procs, fork: bool
) -> None:
    backtest_id = create(world)
    job = enqueue_backtest(redis, backtest_id, timeout=1800)
    args = ("workers.main", "--queues", BACKTESTS, *(("--fork",) if fork else ()))
    started = StartedJobRegistry(BACKTESTS, connection=redis)
    with saves_blocked(world):
        worker = procs.spawn("worker", *args)
        procs.wait_for(lambda: waiting_save(world), 90, "the backtest to wait inside its save")
        assert row(world, backtest_id) == ("running", 1)
        assert status(job) == "started"

        # Alive: the job's lease is a few seconds long and renewed while it runs, so a
        # sweep after the first lease has run out leaves it alone.
        first = lease(started, job)
        assert first < time.time() + TTL + 1  # not the job timeout (1,800 s) + 60 s
        procs.wait_for(lambda: time.time() > first + 1, 3 * TTL, "the first lease to end")
        assert lease(started, job) > time.time()
        assert sweep(world, redis) == 0
        assert (row(world, backtest_id), status(job)) == (("running", 1), "started")

        # RQ's scheduler, and with --fork the work horse running the job, die with it.
        kill_worker(procs, worker, BACKTESTS, redis, children_expected=2 if fork else 1)

    # Dead: no heartbeat renews the lease; once it has run out, the sweep hands the job
    # back to RQ (a retry after 5 s) and shows the backtest queued again.
    assert status(job) == "started"
    wait_abandoned(procs, started, job)
    assert sweep(world, redis) == 1
    assert row(world, backtest_id) == ("queued", 1)
    assert status(job) == "scheduled" and job.retries_left == 1
    assert sweep(world, redis) == 0  # nothing more to do

    procs.spawn("second", *args)
    procs.wait_for(lambda: row(world, backtest_id)[0] != "queued", 60, "the re-run to start")
    procs.wait_for(lambda: row(world, backtest_id) == ("succeeded", 2), 60, "the re-run to succeed")
    # RQ records the job's success just after the job function has committed it.
    procs.wait_for(lambda: status(job) == "finished", 90, "RQ to finish the job")


def test_a_backtest_whose_worker_dies_on_its_last_attempt_fails(
    world: World, redis: Redis, procs: Procs
) -> None:
    backtest_id = create(world)
    with world.engine.begin() as conn:  # as if two runs had already died
        conn.execute(
            sa.text("UPDATE backtests SET attempts = 2 WHERE id = :id"),
            {"id": uuid.UUID(backtest_id)},
        )
    job = enqueue_backtest(redis, backtest_id, timeout=1800)
    job.retries_left = 0  # and RQ had retried its job twice
    job.save()
    started = StartedJobRegistry(BACKTESTS, connection=redis)
    with saves_blocked(world):
        worker = procs.spawn("worker", "workers.main", "--queues", BACKTESTS)
        procs.wait_for(lambda: waiting_save(world), 90, "the backtest to wait inside its save")
        assert row(world, backtest_id) == ("running", 3)
        kill_worker(procs, worker, BACKTESTS, redis, children_expected=1)
    wait_abandoned(procs, started, job)
    assert sweep(world, redis) == 0
    assert status(job) == "failed"
    assert row(world, backtest_id) == ("failed", 3)
    query = sa.text("SELECT error FROM backtests WHERE id = :id")
    with world.engine.connect() as conn:
        error = conn.scalar(query, {"id": uuid.UUID(backtest_id)})
    assert error == "Stopped after 3 attempts that did not finish."


def test_a_tick_job_whose_worker_dies_is_retried_and_ticks_each_run_once(
    world: World, redis: Redis, procs: Procs
) -> None:
    runs = world.start_runs(3, ticked_to=NEWEST - 5 * HOUR)
    before = world.snapshot(runs)
    job = enqueue_tick(redis, runs, NEWEST, tick_job_id("BTC-USD", "1h", NEWEST, 0))
    assert job is not None
    started = StartedJobRegistry(BOTS, connection=redis)
    with world.blocker():
        worker = procs.spawn("worker", "workers.main", "--queues", BOTS)
        procs.wait_for(world.waiting_insert, 90, "the tick to wait inside its insert")
        kill_worker(procs, worker, BOTS, redis, children_expected=1)
        assert world.snapshot(runs) == before
    wait_abandoned(procs, started, job)
    assert sweep(world, redis) == 0  # no backtest to show, but the tick job is handed back
    assert status(job) == "scheduled"
    assert job.retries_left == (TICK_RETRY.max or 0) - 1
    procs.spawn("second", "workers.main", "--queues", BOTS)
    procs.wait_for(lambda: status(job) == "finished", 90, "the retry to run")
    assert job.latest_result().return_value == {"ticked": runs, "skipped": [], "failed": []}
    world.assert_caught_up_once(runs, before)
