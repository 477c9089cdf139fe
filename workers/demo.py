"""The seed's demo track records, built in the seed's process (``flask seed``).

Not a queued job: the seed runs it inline so the boards are full when ``up.sh`` starts
the processes. Each step is a job function the workers run anyway, called directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from models.seed_tracks import CATCH_UP_BARS, CatchUp
from workers.ticks import tick_bots

log = structlog.get_logger(__name__)

# Run after the replay, in this order, when their modules exist (they are issue 14's
# performance and leaderboard jobs): snapshots first, then the boards read them.
FOLLOW_UPS = (
    "workers.performance.refresh_performance",
    "workers.leaderboards.recompute_leaderboards",
)


def _job(dotted: str) -> Callable[[], Any] | None:
    """The function at ``module.name``, or None while that module or name is missing."""
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists but one of its own imports is broken
        return None
    job = getattr(module, name, None)
    return job if callable(job) else None


def build_track_records(catch_up: Sequence[CatchUp]) -> dict[str, Any]:
    """Replay each group's runs through the live tick path, then refresh snapshots and boards.

    Every bar is fresh (``CATCH_UP_BARS``): the runs trade as if they had been ticking
    since they started. Returns what was done: runs ticked, and the follow-ups run
    (those whose module is not there yet are listed as skipped).
    """
    ticked = 0
    for group in catch_up:
        outcome = tick_bots(group.run_ids, group.candle_ts, fresh_bars=CATCH_UP_BARS)
        ticked += len(outcome["ticked"])
        if outcome["failed"]:
            log.warning("demo_catch_up_failed", runs=outcome["failed"])
    done: dict[str, Any] = {"ticked": ticked, "ran": [], "skipped": []}
    for dotted in FOLLOW_UPS:
        job = _job(dotted)
        if job is None:
            done["skipped"].append(dotted)
            continue
        job()
        done["ran"].append(dotted)
    return done
