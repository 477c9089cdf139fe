"""Data export jobs: build one export, and the periodic purge of expired ones."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app

from models.people import exports

log = structlog.get_logger(__name__)


def moment(now: str | None) -> datetime:
    """``now`` (an ISO 8601 time, for a controlled clock) or the current time, aware."""
    if now is None:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(now)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def build_export(export_id: str, now: str | None = None) -> str:
    """Build the export and notify its owner; a ready (or expired, failed) one is left alone.

    Returns ``"ready"`` when this run built it, ``"skipped"`` otherwise.
    """
    ttl = timedelta(hours=current_app.extensions["botyard.settings"].export_ttl_hours)
    export = exports.build(uuid.UUID(export_id), moment(now), ttl)
    if export is None:
        log.info("export_skipped", export_id=export_id)
        return "skipped"
    log.info("export_ready", export_id=export_id, size_bytes=export.size_bytes)
    return "ready"


def purge_exports(now: str | None = None) -> dict[str, int]:
    """Drop expired payloads, fail stuck builds, delete month-old finished rows; the counts."""
    counts = exports.purge_exports(moment(now))
    log.info("exports_purged", **counts)
    return counts
