"""Leaderboard jobs: recompute every board as a new generation (docs/leaderboards.md)."""

from __future__ import annotations

from typing import Any

import structlog
from flask import current_app
from rq import get_current_job

from models.leaderboards.generations import recompute
from workers.exports import moment

log = structlog.get_logger(__name__)


def recompute_leaderboards(now: str | None = None) -> dict[str, Any]:
    """Build, activate and prune one generation of every board; what it did.

    Safe to run twice or concurrently: builds are serialised by an advisory lock and an
    older generation is never activated over a newer one.
    """
    settings = current_app.extensions["botyard.settings"]
    job = get_current_job()
    done = recompute(
        moment(now),
        min_days=settings.leaderboard_min_days,
        min_trades=settings.leaderboard_min_trades,
        keep=settings.leaderboard_keep_generations,
        top_n=settings.leaderboard_notify_top_n,
        job_id=job.id if job is not None else None,
    )
    result = {
        "generation_id": done.generation_id,
        "activated": done.activated,
        "bots_considered": done.bots_considered,
        "entries": done.entries,
        "excluded": done.excluded,
        "notified": done.notified,
        "pruned": done.pruned,
    }
    log.info("leaderboards_recomputed", **result)
    return result
