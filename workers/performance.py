"""Live performance: the periodic pass that keeps daily rollups and snapshots current.

Thin: the work is :func:`models.performance.snapshots.refresh` (incremental, serialised
by an advisory lock, idempotent); docs/metrics.md, "Live performance".
"""

from __future__ import annotations

import structlog

from models.db import session as db
from models.performance.snapshots import refresh

log = structlog.get_logger(__name__)


def refresh_performance() -> dict[str, int]:
    """Roll up every run with new equity and recompute its snapshots; the counts."""
    counts = refresh()
    db.commit()
    log.info("performance_refreshed", **counts)
    return counts
