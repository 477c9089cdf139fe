"""Worker liveness: short job leases kept alive by heartbeats; children that die with the worker.

RQ keeps each started job in its queue's ``StartedJobRegistry`` with a score, the time after
which the job counts as abandoned; ``StartedJobRegistry.cleanup`` then retries it (or fails
it when no retries are left). Out of the box that score is ``job timeout + 60 s`` for a job
run in the worker's own process, and nothing renews it, so a SIGKILLed worker's backtest
(timeout 1,800 s) looked alive for 31 minutes. Here the score is ``WORKER_HEARTBEAT_TTL``
seconds ahead and renewed every third of that while the job runs: by :class:`JobHeartbeat`,
a thread, when the job runs in the worker's own process; by RQ's work-horse monitoring loop
with ``--fork``. "Dead" then means "no heartbeat for ``WORKER_HEARTBEAT_TTL`` seconds".

A SIGKILLed process cannot stop its children, so :func:`children_die_with_worker` asks the
kernel to (Linux ``PR_SET_PDEATHSIG``): every child the worker forks (RQ's scheduler
process, a ``--fork`` work horse) gets SIGTERM the moment the worker dies. A check of
``os.getppid()`` in the child's loop would miss a child blocked in a long call (a work horse
waiting on Postgres) and would need code in RQ's loops; running RQ's scheduler in a thread
would put a thread into every ``--fork`` fork. The scheduler stops on SIGTERM the way it
stops when its worker shuts down, releasing its lock, so the next worker's scheduler can
take over at once instead of after the lock's 61-second expiry.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType

import structlog

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
BEAT_FRACTION = 3  # heartbeats per TTL: two can be missed before a worker counts as dead
RETRY_FAILED_BEAT_S = 1.0  # after a failed beat (Redis away), try again this soon

# The pid of the process about to fork, set just before each fork (the child inherits it).
_forking_parent = [0]


def beat_interval(ttl: int) -> float:
    """Seconds between heartbeats for a lease of ``ttl`` seconds."""
    return ttl / BEAT_FRACTION


class JobHeartbeat:
    """A daemon thread calling ``beat`` every ``interval`` seconds while the block runs.

    A failed beat (Redis away, say) is logged and tried again within a second, so the
    lease is renewed as soon as Redis answers again, before a sweep can take the job for
    abandoned.
    """

    def __init__(self, beat: Callable[[], None], interval: float, job_id: str) -> None:
        self._beat = beat
        self._interval = interval
        self._job_id = job_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)

    def __enter__(self) -> JobHeartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        # A beat stuck on an unresponsive Redis must not hold the worker up; it is a daemon.
        self._thread.join(timeout=self._interval)

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                self._beat()
            except Exception as exc:  # the thread must outlive any one failed beat
                log.warning("job_heartbeat_failed", job_id=self._job_id, error=repr(exc))
                wait = min(RETRY_FAILED_BEAT_S, self._interval)
            else:
                wait = self._interval


def _remember_parent() -> None:
    _forking_parent[0] = os.getpid()


def _arm_child(libc: ctypes.CDLL) -> None:
    # The worker's own SIGTERM handler (a graceful stop) is inherited by the fork; in a
    # child it would only set a flag on the worker's copy. The default action ends the
    # child; RQ's scheduler installs its own graceful handler once it runs.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != _forking_parent[0]:  # the worker died between fork() and prctl()
        os.kill(os.getpid(), signal.SIGTERM)


def children_die_with_worker() -> bool:
    """Make every child this process forks from now on get SIGTERM when this process dies.

    Call once, from the worker's entry point. Returns False (and logs) where the kernel
    offers no parent-death signal: there, children of a SIGKILLed worker live on.
    """
    if not sys.platform.startswith("linux"):
        log.warning("parent_death_signal_unavailable", platform=sys.platform)
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    os.register_at_fork(before=_remember_parent, after_in_child=lambda: _arm_child(libc))
    return True
