"""Activity retention: the daily purge of rows older than ``ACTIVITY_RETENTION_DAYS``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app

from models.people.activities import purge_before
from settings import Settings

log = structlog.get_logger(__name__)

PURGE_BATCH = 5_000
PURGE_MAX_BATCHES = 200


def purge_activities(now: str | None = None) -> int:
    """Delete activity rows recorded over ``ACTIVITY_RETENTION_DAYS`` before ``now``.

    ``now`` is an ISO 8601 time (tests pass one; the schedule passes none: the clock).
    Batches of ``PURGE_BATCH`` commit one by one, at most ``PURGE_MAX_BATCHES`` per pass;
    the next day's pass works off any backlog. Idempotent. Returns how many rows went.
    """
    settings: Settings = current_app.extensions["botyard.settings"]
    clock = datetime.fromisoformat(now).astimezone(UTC) if now else datetime.now(UTC)
    cutoff = clock - timedelta(days=settings.activity_retention_days)
    removed = purge_before(cutoff, PURGE_BATCH, PURGE_MAX_BATCHES)
    log.info("activities_purged", count=removed, days=settings.activity_retention_days)
    return removed
