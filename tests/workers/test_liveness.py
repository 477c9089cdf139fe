"""The job heartbeat thread: it beats while the block runs, retries a failed beat soon, stops."""

from __future__ import annotations

import threading

from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from tests.workers.processes import wait_for
from workers.liveness import RETRY_FAILED_BEAT_S, JobHeartbeat, beat_interval


class _Waits:
    """Stands in for the thread's stop event: records each wait, says stop after ``count``."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.timeouts: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        return len(self.timeouts) > self.count


def test_a_failed_beat_is_logged_and_tried_again_within_a_second() -> None:
    outcomes = iter([RedisConnectionError("Redis is away"), RedisConnectionError("still"), None])
    beats = []

    def beat() -> None:
        beats.append(1)
        error = next(outcomes, None)
        if error is not None:
            raise error

    heartbeat = JobHeartbeat(beat, 30.0, "job-1")
    waits = _Waits(count=4)
    heartbeat._stop = waits  # drives the loop without a clock
    with capture_logs() as logs:
        heartbeat._run()
    assert len(beats) == 4
    # Wait the interval, fail, retry soon, fail, retry soon, succeed: the interval again.
    assert waits.timeouts == [30.0, RETRY_FAILED_BEAT_S, RETRY_FAILED_BEAT_S, 30.0, 30.0]
    failed = [entry for entry in logs if entry["event"] == "job_heartbeat_failed"]
    assert [entry["job_id"] for entry in failed] == ["job-1", "job-1"]
    assert "ConnectionError" in failed[0]["error"]


def test_the_thread_beats_while_the_block_runs_and_stops_with_it() -> None:
    beats = threading.Semaphore(0)
    with JobHeartbeat(beats.release, 0.05, "job-2") as heartbeat:
        wait_for(lambda: beats.acquire(timeout=0), 10, "a first beat")
        wait_for(lambda: beats.acquire(timeout=0), 10, "a second beat")
    assert not heartbeat._thread.is_alive()


def test_beats_come_three_times_per_ttl() -> None:
    assert beat_interval(30) == 10
    assert beat_interval(6) == 2
