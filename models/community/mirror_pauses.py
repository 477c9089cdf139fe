"""Pausing mirrors whose source can no longer be followed, and telling their owners.

A mirror follows while its source is live (running, or paused for a while by its owner or
its schedule), public, not hidden and its owner's account active. When that ends, the
mirror's run is paused with the reason in ``bot_mirrors.paused_reason`` and its owner gets
``mirror.paused`` (the platform speaking, so not subject to blocks). Two callers: the bot
lifecycle hooks (a source stopped or made private: at once, in the same transaction) and
the periodic job ``pause-orphaned-mirrors`` (everything else, within a minute: a source
hidden by moderation, errored, deleted with its owner's account, or a race with a hook).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import aliased

from models.bots.bots import Bot, owner_is_active
from models.bots.execution_logs import write_log
from models.bots.mirrors import BotMirror
from models.bots.runs import active_run, lock_bot
from models.db import session as db
from models.identity.tables import User
from models.people.bot_events import bot_status
from models.people.notifications import notify

# Why a mirror stopped following (bot_mirrors.paused_reason), first match wins.
REASONS = (
    "source_deleted",
    "source_hidden",
    "source_private",
    "source_unavailable",
    "source_stopped",
)


@dataclass(frozen=True)
class Orphan:
    """A running mirror whose source can no longer be followed, and why."""

    bot_id: uuid.UUID
    source_bot_id: uuid.UUID | None
    reason: str


def orphaned_mirrors(source_bot_id: uuid.UUID | None = None) -> list[Orphan]:
    """Running mirrors (of ``source_bot_id``, or of any source) that must pause. No locks."""
    mirror, source, owner = aliased(Bot), aliased(Bot), aliased(User)
    reason = case(
        (source.id.is_(None), "source_deleted"),
        (source.hidden_at.is_not(None), "source_hidden"),
        (source.visibility != "public", "source_private"),
        (~owner_is_active(owner), "source_unavailable"),
        (source.status.not_in(("running", "paused")), "source_stopped"),
        else_=None,
    )
    stmt = (
        select(BotMirror.bot_id, BotMirror.source_bot_id, reason.label("reason"))
        .join(mirror, mirror.id == BotMirror.bot_id)
        .outerjoin(source, source.id == BotMirror.source_bot_id)
        .outerjoin(owner, owner.id == source.owner_id)
        .where(mirror.status == "running")
        .order_by(BotMirror.bot_id)
    )
    if source_bot_id is not None:
        stmt = stmt.where(BotMirror.source_bot_id == source_bot_id)
    return [Orphan(r.bot_id, r.source_bot_id, r.reason) for r in db.execute(stmt) if r.reason]


def pause_mirror(orphan: Orphan, now: datetime) -> bool:
    """Pause one mirror (bot row locked first, the lifecycle order) and notify its owner.

    Does nothing when the mirror is no longer running. Returns True when it paused it.
    """
    bot = lock_bot(orphan.bot_id)
    if bot is None or bot.status != "running":
        return False
    run = active_run(bot)
    if run is not None:
        run.status, run.paused_at, run.paused_by = "paused", now, None
    bot.status = "paused"
    db.execute(
        update(BotMirror).where(BotMirror.bot_id == bot.id).values(paused_reason=orphan.reason)
    )
    db.flush()
    data = {
        "bot_id": str(bot.id),
        "bot_name": bot.name,
        "source_bot_id": None if orphan.source_bot_id is None else str(orphan.source_bot_id),
        "reason": orphan.reason,
    }
    if run is not None:
        write_log(run.id, bot.id, "info", "run_paused", data={"by": "source", **data})
    bot_status(
        bot.owner_id,
        bot.id,
        bot.name,
        "paused",
        status="paused",
        by="source",
        run_id=None if run is None else run.id,
    )
    notify(bot.owner_id, "mirror.paused", data)
    return True


def pause_mirrors_of(source_bot_id: uuid.UUID, now: datetime) -> int:
    """Pause the mirrors of one source that can no longer follow it (a lifecycle hook).

    Runs in the caller's transaction, after its change is flushed. Returns how many paused.
    """
    db.flush()
    return sum(pause_mirror(orphan, now) for orphan in orphaned_mirrors(source_bot_id))
