"""Recovery against real processes: SIGKILL mid-batch, a job timeout, the database going away,
downtime caught up by the sweep, and a second scheduler that stays idle.

Each test starts ``python -m workers.main`` (and ``workers.schedule``) as separate
processes on a database of the module's own (``tests/workers/processes.py``). To stop a
tick job at a known point, the test holds a SHARE lock on ``bot_equity``: the job locks
its runs and computes, then waits inside its bulk insert. See docs/execution.md,
"Recovery (tested against real processes)".
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Retry, Worker
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq_scheduler import Scheduler

from tests.workers.processes import NEWEST, Procs, World, world_database
from workers.enqueue import TICK_RETRY, enqueue_tick, tick_job_id
from workers.queues import BOTS, DEFAULT, get_queue
from workers.schedule import LEADER_KEY, PERIODIC

BEFORE = NEWEST - 5 * 3_600_000  # where the runs were ticked to before the job under test
WORKER = ("workers.main", "--queues", BOTS)
HEARTBEAT_TTL = 6


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with world_database() as created:
        yield created


@pytest.fixture
def procs(world: World, redis: Redis, tmp_path: Path) -> Iterator[Procs]:
    # A short lease, so a killed worker's job is handed back within seconds.
    started = Procs({**world.env, "WORKER_HEARTBEAT_TTL": str(HEARTBEAT_TTL)}, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
        # A test that failed half-way leaves runs behind NEWEST; the next test's sweep
        # must see only its own.
        world.stop_running_runs()


def outcome(run_ids: list[str]) -> dict[str, list[str]]:
    return {"ticked": run_ids, "skipped": [], "failed": []}


def status(job: Job) -> str:
    """The job's status now, reloading the whole job (its retries left too) from Redis."""
    job.refresh()
    return job.get_status(refresh=False).value


def test_a_worker_killed_mid_batch_loses_nothing_and_doubles_nothing(
    world: World, redis: Redis, procs: Procs
) -> None:
    runs = world.start_runs(4, ticked_to=BEFORE)
    before = world.snapshot(runs)
    assert all(run["trades"] > 0 for run in before.values())  # there is something to double
    queue = get_queue(BOTS, redis)
    with world.blocker():
        worker = procs.spawn("worker", *WORKER)
        job = enqueue_tick(redis, runs, NEWEST, tick_job_id("BTC-USD", "1h", NEWEST, 0))
        assert job is not None
        backend = procs.wait_for(world.waiting_insert, 90, "the job to wait inside its insert")
        assert status(job) == "started"
        # The worker alone: RQ's scheduler child it forked dies with it (PR_SET_PDEATHSIG).
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(10) == -signal.SIGKILL
        assert world.snapshot(runs) == before
    # The killed worker's session finds its client gone once it can go on: it rolls back.
    procs.wait_for(lambda: not world.backend_alive(backend), 90, "the dead worker's session")
    assert world.snapshot(runs) == before

    # RQ lists the job as started until the dead worker's lease (its heartbeats) runs out;
    # a second worker's maintenance then hands it back for a retry and runs it.
    assert job.id in StartedJobRegistry(queue=queue).get_job_ids()
    procs.spawn("second", *WORKER)
    procs.wait_for(lambda: status(job) == "finished", 150, "a second worker to retry the job")
    assert job.retries_left == (TICK_RETRY.max or 0) - 1  # one retry spent, on the lost run
    assert job.latest_result().return_value == outcome(runs)
    world.assert_caught_up_once(runs, before)


def test_a_job_past_its_timeout_fails_and_is_retried_without_counting_against_bots(
    world: World, redis: Redis, procs: Procs
) -> None:
    runs = world.start_runs(3, ticked_to=BEFORE)
    before = world.snapshot(runs)
    with world.blocker():
        worker = procs.spawn("worker", *WORKER)
        job = get_queue(BOTS, redis).enqueue(
            "workers.ticks.tick_bots",
            runs,
            NEWEST,
            job_id=tick_job_id("BTC-USD", "1h", NEWEST, 0),
            job_timeout=3,
            retry=Retry(max=3, interval=[2, 10, 30]),
            result_ttl=3600,
            failure_ttl=3600,
        )
        backend = procs.wait_for(world.waiting_insert, 90, "the job to wait inside its insert")
        # RQ writes the "scheduled" status before the pipeline that saves the job and puts it
        # in the scheduled registry; only once it is there are retries_left current.
        scheduled = ScheduledJobRegistry(queue=get_queue(BOTS, redis))
        procs.wait_for(
            lambda: status(job) == "scheduled" and job.id in scheduled.get_job_ids(),
            90,
            "the timeout to fail the job",
        )
        status(job)
        assert job.retries_left == 2
        [rq_worker] = Worker.all(queue=get_queue(BOTS, redis))
        assert rq_worker.failed_job_count == 1
        assert "JobTimeoutException" in procs.output("worker")
        assert world.snapshot(runs) == before  # not the bots' fault: no failure counted
        # The statement the timeout cut short is cancelled on the server (its row locks go
        # with it) while the block still holds, and the worker lives on for the retry.
        procs.wait_for(lambda: not world.backend_alive(backend), 90, "the statement's cancel")
        assert worker.poll() is None
    procs.wait_for(lambda: status(job) == "finished", 90, "RQ's scheduler to run the retry")
    assert job.latest_result().return_value == outcome(runs)
    world.assert_caught_up_once(runs, before)


def test_a_lost_database_connection_fails_the_job_for_a_retry(
    world: World, redis: Redis, procs: Procs
) -> None:
    runs = world.start_runs(3, ticked_to=BEFORE)
    before = world.snapshot(runs)
    with world.blocker():
        worker = procs.spawn("worker", *WORKER)
        job = enqueue_tick(redis, runs, NEWEST, tick_job_id("BTC-USD", "1h", NEWEST, 0))
        assert job is not None
        backend = procs.wait_for(world.waiting_insert, 90, "the job to wait inside its insert")
        assert world.terminate(backend)
        procs.wait_for(lambda: status(job) == "scheduled", 90, "the job to fail")
        assert job.retries_left == (TICK_RETRY.max or 0) - 1
        assert "AdminShutdown" in procs.output("worker")
        assert world.snapshot(runs) == before
        assert worker.poll() is None
    procs.wait_for(lambda: status(job) == "finished", 90, "RQ's scheduler to run the retry")
    assert job.latest_result().return_value == outcome(runs)
    world.assert_caught_up_once(runs, before)


def test_downtime_is_caught_up_by_the_sweep(world: World, redis: Redis, procs: Procs) -> None:
    # Nothing ran while the last day of candles was stored: one run is a day behind, two
    # never ticked. The scheduler's first pass queues the sweep; a worker catches them up.
    runs = sorted(world.start_runs(1, NEWEST - 24 * 3_600_000) + world.start_runs(2, None))
    before = world.snapshot(runs)
    procs.spawn("scheduler", "workers.schedule")
    sweep = "periodic-catch-up-bots"
    procs.wait_for(
        lambda: sweep in get_queue(DEFAULT, redis).job_ids, 20, "the scheduler to queue the sweep"
    )
    worker = procs.spawn("worker", "workers.main", "--burst", "--queues", f"{BOTS},{DEFAULT}")
    assert procs.exit_code(worker, 90) == 0
    assert Job.fetch(sweep, connection=redis).latest_result().return_value == {"runs": 3, "jobs": 1}
    [catch_up] = [job for job in get_queue(BOTS, redis).finished_job_registry.get_job_ids()]
    assert catch_up.startswith("catchup-BTC-USD-1h-")
    after = world.snapshot(runs)
    for run_id in runs:
        assert after[run_id]["last_candle_ts"] == NEWEST
        assert after[run_id]["failures"] == 0
        assert after[run_id]["ticks"] == before[run_id]["ticks"] + 1  # one catch-up tick each
    world.assert_caught_up_once(runs, before)


def test_a_second_scheduler_stays_idle_until_the_leader_stops(
    world: World, redis: Redis, procs: Procs
) -> None:
    first = procs.spawn("first", "workers.schedule")
    leader = procs.wait_for(lambda: redis.get(LEADER_KEY), 90, "a leader")
    assert leader.decode().endswith(f"-{first.pid}")
    second = procs.spawn("second", "workers.schedule")
    procs.wait_for(lambda: "Lock already taken" in procs.output("second"), 60, "a standby")
    # A probe due every second: the leader queues it on its passes while the standby skips
    # every pass (it never holds the leader key, so it never takes rq-scheduler's lock).
    Scheduler(connection=redis).schedule(
        scheduled_time=datetime.now(UTC), func="os.getpid", interval=1, repeat=None, id="probe"
    )
    queue_key = get_queue(DEFAULT, redis).key
    skipped = procs.output("second").count("Lock already taken")
    for attempt in ("the leader to queue the probe", "the leader to queue the probe again"):
        procs.wait_for(lambda: redis.lrem(queue_key, 0, "probe"), 60, attempt)
    procs.wait_for(
        lambda: procs.output("second").count("Lock already taken") >= skipped + 2,
        60,
        "the standby to skip two more passes",
    )
    assert "scheduler_became_leader" in procs.output("first")
    assert "scheduler_became_leader" not in procs.output("second")
    # The periodic jobs were queued by the leader's passes (the standby queued nothing).
    queues = {spec.queue for spec in PERIODIC}
    periodic = {
        j for name in queues for j in get_queue(name, redis).job_ids if j.startswith("periodic-")
    }
    assert periodic == {spec.job_id for spec in PERIODIC}
    assert redis.get(LEADER_KEY) == leader

    first.send_signal(signal.SIGTERM)
    assert procs.exit_code(first, 90) == 0  # its leadership released on the way out
    successor = procs.wait_for(lambda: redis.get(LEADER_KEY), 60, "the standby to take over")
    assert successor.decode().endswith(f"-{second.pid}")
    procs.wait_for(
        lambda: redis.lrem(queue_key, 0, "probe"), 60, "the new leader to queue the probe"
    )
    assert second.poll() is None
