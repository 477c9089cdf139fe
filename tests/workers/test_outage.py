"""Outage handling in a process's loop: bounded jittered delays, a log line per change of state."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from workers.outage import Backoff, ServiceWatch, until_available


def _pg_down() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_delays_double_up_to_the_cap_each_drawn_between_half_and_all_of_it() -> None:
    backoff = Backoff(base=0.5, cap=10.0)
    ceilings = [0.5, 1, 2, 4, 8, 10, 10, 10]
    delays = [backoff.next() for _ in ceilings]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in (backoff.next() for _ in range(20))}) > 1  # jittered
    backoff.reset()
    assert backoff.next() <= 0.5


def test_an_outage_logs_once_when_it_starts_and_once_when_it_ends() -> None:
    watch = ServiceWatch("dispatcher", Backoff(base=0.01, cap=0.02))
    with capture_logs() as logs:
        for _ in range(50):
            watch.failed(RedisConnectionError("refused"))
        assert watch.down == {"redis"}
        watch.failed(_pg_down())
        watch.recovered()
        watch.recovered()  # nothing was down: nothing to say
    events = [(e["event"], e.get("service")) for e in logs]
    assert events == [
        ("service_unavailable", "redis"),
        ("service_unavailable", "postgres"),
        ("service_restored", "redis"),
        ("service_restored", "postgres"),
    ]
    assert all(e["process"] == "dispatcher" for e in logs)
    assert watch.down == set()
    assert watch.backoff.attempts == 0


def test_a_step_is_retried_through_an_outage_until_it_gets_through() -> None:
    calls: list[int] = []

    def step() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise _pg_down()
        return "done"

    watch = ServiceWatch("feed", Backoff(base=0.001, cap=0.002))
    with capture_logs() as logs:
        assert until_available(step, watch, [False]) == "done"
    assert len(calls) == 4
    assert [e["event"] for e in logs] == ["service_unavailable", "service_restored"]


def test_errors_that_waiting_does_not_cure_are_raised_and_a_stop_ends_the_wait() -> None:
    watch = ServiceWatch("feed", Backoff(base=0.001, cap=0.002))

    def broken() -> Any:
        raise ResponseError("WRONGTYPE")

    with pytest.raises(ResponseError):
        until_available(broken, watch, [False])
    stop = [False]

    def away() -> Any:
        stop[0] = True  # a SIGTERM arrives during the outage
        raise RedisConnectionError("refused")

    assert until_available(away, watch, stop) is None
