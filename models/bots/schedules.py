"""Bot schedules: when a bot starts, stops, and may run (every time in UTC).

A schedule is JSON on the bot (``bots.schedule``), validated by the API and stored
normalised::

    {"start_at": "2026-01-05T09:00:00+00:00" or null,
     "stop_at": "2026-01-09T17:00:00+00:00" or null,
     "windows": [{"days": ["mon", "tue"], "start": "22:00", "end": "02:00"}]}

The decisions (:func:`should_start`, :func:`should_stop`, :func:`window_action`) are
pure functions of the schedule, the bot's state and ``now``. The ``*_on_schedule``
functions re-check them under the lifecycle's row locks, then act through
``models.bots.runs``. The periodic job is ``workers.bot_schedules``. See
docs/execution.md#schedules.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import DateTime, and_, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
from models.bots.runs import (
    BotRun,
    active_run,
    lock_bot,
    pause_bot,
    resume_bot,
    start_bot,
    stop_bot,
)
from models.db import session as db
from models.identity.quotas import lock_owner

# In ``datetime.weekday()`` order, so ``DAYS[now.weekday()]`` is today.
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_WINDOWS = 14
# Not ``error``: a bot that stopped on an error waits for its owner.
SCHEDULE_STARTABLE = ("draft", "stopped")

Schedule = dict[str, Any]
WindowAction = Literal["pause", "resume"]


def minutes_of(hhmm: str) -> int:
    """Minutes after midnight of an ``HH:MM`` time."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def schedule_time(schedule: Schedule | None, key: str) -> datetime | None:
    """The schedule's ``start_at`` or ``stop_at`` as an aware datetime, or None."""
    value = (schedule or {}).get(key)
    return datetime.fromisoformat(value) if value else None


def _in_one(window: dict[str, Any], now: datetime) -> bool:
    days = window.get("days", DAYS)
    start, end = minutes_of(window["start"]), minutes_of(window["end"])
    minute = now.hour * 60 + now.minute
    today, yesterday = DAYS[now.weekday()], DAYS[(now.weekday() - 1) % 7]
    if start < end:
        return today in days and start <= minute < end
    # Wraps midnight: the part after midnight belongs to the day the window started on.
    return (today in days and minute >= start) or (yesterday in days and minute < end)


def in_window(schedule: Schedule | None, now: datetime) -> bool:
    """Whether ``now`` (aware) falls in one of the schedule's daily windows.

    A window includes its start minute and excludes its end minute. A schedule without
    windows (or no schedule) puts no limit on when the bot runs, so this is True.
    """
    windows = (schedule or {}).get("windows") or []
    if not windows:
        return True
    now = now.astimezone(UTC)
    return any(_in_one(window, now) for window in windows)


def should_start(
    schedule: Schedule | None, status: str, last_started_at: datetime | None, now: datetime
) -> bool:
    """Start at ``start_at``, once: a draft or stopped bot not started since, before ``stop_at``."""
    start_at = schedule_time(schedule, "start_at")
    if start_at is None or status not in SCHEDULE_STARTABLE or now < start_at:
        return False
    stop_at = schedule_time(schedule, "stop_at")
    if stop_at is not None and stop_at <= now:
        return False
    return last_started_at is None or last_started_at < start_at


def should_stop(
    schedule: Schedule | None, status: str, run_started_at: datetime | None, now: datetime
) -> bool:
    """Stop at ``stop_at`` an active bot whose run began before it (a later run is the owner's)."""
    stop_at = schedule_time(schedule, "stop_at")
    return (
        stop_at is not None
        and status in ACTIVE_BOT_STATUSES
        and stop_at <= now
        and run_started_at is not None
        and run_started_at < stop_at
    )


def window_action(
    schedule: Schedule | None, status: str, paused_by: str | None, now: datetime
) -> WindowAction | None:
    """Pause a running bot outside its windows; resume one the schedule paused, inside them."""
    if status == "running" and not in_window(schedule, now):
        return "pause"
    if status == "paused" and paused_by == "schedule" and in_window(schedule, now):
        return "resume"
    return None


def _at(key: str) -> Any:
    """The schedule's ``start_at`` or ``stop_at`` as a timestamptz in SQL."""
    return cast(Bot.schedule[key].astext, DateTime(timezone=True))


def _active_run_join() -> Any:
    return and_(BotRun.bot_id == Bot.id, BotRun.status.in_(ACTIVE_BOT_STATUSES))


def due_starts(now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``(owner_id, bot_id)`` of the bots :func:`should_start` would start at ``now``."""
    started_since = exists().where(BotRun.bot_id == Bot.id, BotRun.started_at >= _at("start_at"))
    rows = db.execute(
        select(Bot.owner_id, Bot.id)
        .where(
            Bot.schedule.is_not(None),
            Bot.status.in_(SCHEDULE_STARTABLE),
            _at("start_at") <= now,
            or_(_at("stop_at").is_(None), _at("stop_at") > now),
            ~started_since,
        )
        .order_by(Bot.id)
    )
    return [(owner_id, bot_id) for owner_id, bot_id in rows]


def due_stops(now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``(owner_id, bot_id)`` of the bots :func:`should_stop` would stop at ``now``."""
    rows = db.execute(
        select(Bot.owner_id, Bot.id)
        .join(BotRun, _active_run_join())
        .where(
            Bot.schedule.is_not(None),
            Bot.status.in_(ACTIVE_BOT_STATUSES),
            _at("stop_at") <= now,
            BotRun.started_at < _at("stop_at"),
        )
        .order_by(Bot.id)
    )
    return [(owner_id, bot_id) for owner_id, bot_id in rows]


class WindowCandidate(NamedTuple):
    """A bot whose windows may pause or resume it, as read without a lock."""

    owner_id: uuid.UUID
    bot_id: uuid.UUID
    status: str
    schedule: Schedule | None
    paused_by: str | None


def window_candidates() -> list[WindowCandidate]:
    """Running bots with windows, and the paused ones the schedule paused.

    The latter even if their windows were removed since: without windows, they resume.
    Whether each one moves is :func:`window_action`'s call.
    """
    has_windows = Bot.schedule["windows"] != cast("[]", JSONB)
    rows = db.execute(
        select(Bot.owner_id, Bot.id, Bot.status, Bot.schedule, BotRun.paused_by)
        .join(BotRun, _active_run_join())
        .where(
            or_(
                and_(Bot.status == "running", has_windows),
                and_(Bot.status == "paused", BotRun.paused_by == "schedule"),
            )
        )
        .order_by(Bot.id)
    )
    return [WindowCandidate(*row) for row in rows]


def _last_started_at(bot_id: uuid.UUID) -> datetime | None:
    started: datetime | None = db.scalar(
        select(func.max(BotRun.started_at)).where(BotRun.bot_id == bot_id)
    )
    return started


def start_on_schedule(
    owner_id: uuid.UUID, bot_id: uuid.UUID, limit: int, now: datetime
) -> Literal["started"] | None:
    """Start the bot if its schedule still says so at ``now``; None if it no longer does.

    Locks the owner's row, then the bot's, in the same order as a start through the API.
    Raises :class:`~models.errors.QuotaExceeded` when the owner is at ``limit``.
    """
    lock_owner(owner_id)
    bot = lock_bot(bot_id)
    if bot is None or not should_start(bot.schedule, bot.status, _last_started_at(bot_id), now):
        return None
    start_bot(owner_id, bot_id, limit, now, by="schedule")
    return "started"


def stop_on_schedule(
    owner_id: uuid.UUID, bot_id: uuid.UUID, now: datetime
) -> Literal["stopped"] | None:
    """Stop the bot if its schedule still says so at ``now``; None if it no longer does."""
    bot = lock_bot(bot_id)
    if bot is None:
        return None
    run = active_run(bot)
    started_at = run.started_at if run is not None else None
    if not should_stop(bot.schedule, bot.status, started_at, now):
        return None
    stop_bot(owner_id, bot_id, now, by="schedule")
    return "stopped"


def move_on_schedule(
    owner_id: uuid.UUID, bot_id: uuid.UUID, now: datetime
) -> Literal["paused", "resumed"] | None:
    """Pause or resume the bot if its windows still say so at ``now``; None otherwise."""
    bot = lock_bot(bot_id)
    if bot is None:
        return None
    run = active_run(bot)
    paused_by = run.paused_by if run is not None else None
    action = window_action(bot.schedule, bot.status, paused_by, now)
    if action == "pause":
        pause_bot(owner_id, bot_id, now, by="schedule")
        return "paused"
    if action == "resume":
        resume_bot(owner_id, bot_id, by="schedule")
        return "resumed"
    return None
