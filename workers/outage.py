"""Riding out a Redis or Postgres outage in a long-running process (docs/operations.md).

Every Procfile process loops forever. When a backing service goes away, a loop asks its
:class:`ServiceWatch` how long to wait: the watch logs ``service_unavailable`` once, when
the service is first seen down, and ``service_restored`` once, when the next pass succeeds,
so an outage of any length costs two log lines per process, not one per retry. Waits grow
exponentially up to ``MAX_DELAY_S`` with jitter, so a fleet of processes does not hammer
a server that just came back in lockstep.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError

from models.db import session as db
from workers.transient import backing_service

log = structlog.get_logger(__name__)

BASE_DELAY_S = 0.5
MAX_DELAY_S = 10.0

T = TypeVar("T")


class Backoff:
    """Bounded exponential delays with "equal jitter": each in [d/2, d], d doubling to a cap."""

    def __init__(self, base: float = BASE_DELAY_S, cap: float = MAX_DELAY_S) -> None:
        self.base = base
        self.cap = cap
        self.attempts = 0

    def next(self) -> float:
        """The next delay, seconds."""
        ceiling = min(self.cap, self.base * 2**self.attempts)
        self.attempts = min(self.attempts + 1, 32)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not a secret)

    def reset(self) -> None:
        """Start again from the base delay (the service answered)."""
        self.attempts = 0


class ServiceWatch:
    """One process's view of its backing services: a log line per change of state, and delays.

    Thread-safe: a process's threads may share one watch.
    """

    def __init__(self, process: str, backoff: Backoff | None = None) -> None:
        self.process = process
        self.backoff = backoff or Backoff()
        self._down: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @property
    def down(self) -> set[str]:
        """The services currently seen down (``redis``, ``postgres``)."""
        with self._lock:
            return set(self._down)

    def failed(self, exc: BaseException) -> float:
        """Record a failure caused by ``exc``; returns how long to wait before trying again."""
        service = backing_service(exc) or "unknown"
        with self._lock:
            first = service not in self._down
            if first:
                self._down[service] = (time.monotonic(), type(exc).__name__)
            delay = self.backoff.next()
        if first:
            log.warning(
                "service_unavailable",
                service=service,
                process=self.process,
                error_type=type(exc).__name__,
                retry_in_s=round(delay, 2),
            )
        return delay

    def recovered(self) -> None:
        """A pass succeeded: log each service that was down as restored, and reset the delays."""
        with self._lock:
            if not self._down:
                return
            gone, self._down = self._down, {}
            self.backoff.reset()
        now = time.monotonic()
        for service, (since, _error) in gone.items():
            log.info(
                "service_restored",
                service=service,
                process=self.process,
                down_s=round(now - since, 1),
            )

    def pause(self, exc: BaseException, stop: Callable[[], bool] = lambda: False) -> None:
        """:meth:`failed`, then sleep the delay it gives, waking early once ``stop()`` is true."""
        deadline = time.monotonic() + self.failed(exc)
        while not stop():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))


def end_transaction() -> None:
    """Roll back after a failure; with Postgres away that may fail too, then drop the session."""
    try:
        db.rollback()
    except SQLAlchemyError:
        db.remove()


def until_available(step: Callable[[], T], watch: ServiceWatch, stop: list[bool]) -> T | None:
    """Run ``step`` again and again through a backing service's outage; None if stopped first.

    Any other error propagates: it is a bug or bad data, not something waiting cures.
    """
    while not stop[0]:
        try:
            result = step()
        except Exception as exc:
            if backing_service(exc) is None:
                raise
            end_transaction()
            watch.pause(exc, stop=lambda: stop[0])
            continue
        watch.recovered()
        return result
    return None
