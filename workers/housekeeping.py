"""Periodic housekeeping jobs (registered in ``workers/schedule.py``)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from models import sessions
from models.db import session as db
from models.password_resets import purge_reset_tokens as purge_stale_reset_tokens

log = structlog.get_logger(__name__)

SESSION_RETENTION_DAYS = 30


def purge_sessions() -> int:
    """Delete login sessions that expired or were revoked over a month ago; returns the count.

    Safe to run twice: a second run finds nothing left to delete.
    """
    removed = sessions.purge_stale(datetime.now(UTC), SESSION_RETENTION_DAYS)
    db.commit()
    log.info("sessions_purged", count=removed)
    return removed


def purge_reset_tokens() -> int:
    """Delete password reset tokens used or expired over a week ago; returns the count."""
    removed = purge_stale_reset_tokens(datetime.now(UTC))
    db.commit()
    log.info("reset_tokens_purged", count=removed)
    return removed
