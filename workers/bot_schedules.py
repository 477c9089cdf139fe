"""The bot-schedule job (every 30 s, registered in ``workers/schedule.py``).

Each pass starts the bots whose ``start_at`` has come, stops those whose ``stop_at``
has, then pauses running bots outside their daily windows and resumes the ones the
schedule paused once a window opens. See docs/execution.md#schedules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import structlog
from flask import current_app

from models.bots.bots import Bot
from models.bots.runs import current_run
from models.bots.schedules import (
    WindowCandidate,
    due_starts,
    due_stops,
    move_on_schedule,
    start_on_schedule,
    stop_on_schedule,
    window_action,
    window_candidates,
)
from models.db import session as db
from models.errors import QuotaExceeded
from models.identity.tables import User
from models.people.bot_events import bot_status
from settings import Settings
from workers.transient import is_transient

log = structlog.get_logger(__name__)

COUNTS = ("started", "stopped", "paused", "resumed", "refused", "failed")


def apply_schedules() -> dict[str, int]:
    """Apply every bot's schedule as of now (UTC); returns the number of bots by action."""
    return apply_schedules_at(datetime.now(UTC))


def apply_schedules_at(now: datetime) -> dict[str, int]:
    """One pass at ``now`` (aware): starts, then stops, then window pauses and resumes.

    Each bot gets its own transaction: one that fails is rolled back, logged and counted
    under ``failed``, and the pass goes on. A transient error (the database going away)
    fails the job instead, and the next pass picks up where it stopped. A start beyond
    the owner's running-bot limit is counted under ``refused`` and tried again next
    pass. The phases run in this order so a pass leaves nothing for a second pass at the
    same ``now`` to do: a bot started outside its windows is paused by the same pass.
    """
    settings: Settings = current_app.extensions["botyard.settings"]
    counts = dict.fromkeys(COUNTS, 0)
    for owner_id, bot_id in due_starts(now):
        _attempt(counts, owner_id, bot_id, partial(_start, settings, owner_id, bot_id, now))
    for owner_id, bot_id in due_stops(now):
        _attempt(counts, owner_id, bot_id, partial(stop_on_schedule, owner_id, bot_id, now))
    for c in window_candidates():
        _attempt(counts, c.owner_id, c.bot_id, partial(_move, c, now))
    log.info("schedules_applied", now=now.isoformat(), **counts)
    return counts


def _start(settings: Settings, owner_id: uuid.UUID, bot_id: uuid.UUID, now: datetime) -> str | None:
    """Start on schedule under the owner's running-bot limit, as the API's start would."""
    owner = db.get(User, owner_id)
    if owner is None:
        return None
    limit = settings.for_role("bot_limit", owner.role_names)
    return start_on_schedule(owner_id, bot_id, limit, now)


def _move(candidate: WindowCandidate, now: datetime) -> str | None:
    """Pause or resume the bot if its windows say so; most candidates stay as they are."""
    c = candidate
    if window_action(c.schedule, c.status, c.paused_by, now) is None:
        return None  # no lock taken: checking every running bot with windows stays cheap
    return move_on_schedule(c.owner_id, c.bot_id, now)


def _announce(owner_id: uuid.UUID, bot_id: uuid.UUID, done: str) -> None:
    """The owner's ``bot.status`` event (and notification) for what the schedule did."""
    bot = db.get(Bot, bot_id)  # locked by the action: already in the session
    if bot is None:
        return
    run = current_run(bot)
    run_id = None if run is None else run.id
    bot_status(owner_id, bot_id, bot.name, done, status=bot.status, by="schedule", run_id=run_id)


def _attempt(
    counts: dict[str, int],
    owner_id: uuid.UUID,
    bot_id: uuid.UUID,
    action: Callable[[], str | None],
) -> None:
    """Run one bot's action in its own transaction and count what it did."""
    try:
        done = action()
        if done is not None:
            _announce(owner_id, bot_id, done)  # in the action's transaction
        db.commit()
    except QuotaExceeded as exc:
        db.rollback()
        counts["refused"] += 1
        log.warning("schedule_start_refused", bot_id=str(bot_id), reason=str(exc))
        return
    except Exception as exc:
        db.rollback()
        if is_transient(exc):
            raise  # the database went away: fail the job rather than every bot in turn
        # One broken bot must not hold up every other schedule; the log keeps the traceback.
        counts["failed"] += 1
        log.exception("schedule_action_failed", bot_id=str(bot_id))
        return
    if done is not None:
        counts[done] += 1
        log.info("schedule_action", bot_id=str(bot_id), action=done)
