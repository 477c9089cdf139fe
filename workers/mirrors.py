"""The periodic job that pauses mirrors whose source can no longer be followed.

The lifecycle hooks pause a source's mirrors at once when its owner stops it or makes it
private; this pass, every minute, catches the rest (a source hidden by moderation,
errored, gone with its owner's account, or a mirror created in a race with a hook).
Each mirror is paused in a transaction of its own, so one failure does not hold up the
others, and a second pass finds nothing left to do. See docs/community.md, "Mirrors".
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from models.community.mirror_pauses import orphaned_mirrors, pause_mirror
from models.db import session as db
from workers.transient import is_transient

log = structlog.get_logger(__name__)


def pause_orphaned_mirrors(now: datetime | None = None) -> dict[str, int]:
    """Pause every running mirror whose source cannot be followed; ``{"paused", "failed"}``."""
    moment = datetime.now(UTC) if now is None else now
    orphans = orphaned_mirrors()
    db.rollback()
    paused = failed = 0
    for orphan in orphans:
        try:
            paused += pause_mirror(orphan, moment)
            db.commit()
        except Exception as exc:
            db.rollback()
            if is_transient(exc):
                raise
            failed += 1
            log.exception("mirror_pause_failed", bot_id=str(orphan.bot_id))
    log.info("orphaned_mirrors_paused", paused=paused, failed=failed)
    return {"paused": paused, "failed": failed}
