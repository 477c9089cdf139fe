"""Bot events for their owner: live events on ``/me/events`` and the matching notifications.

The bot code (the lifecycle views, the schedule job, the tick job) calls these inside
the transaction that makes the change, so an event exists exactly when its change
does (models/people/outbox.py publishes after the commit). They take plain values,
not bot rows: this area does not reach into the bots area.

Live events (docs/accounts.md#live-events):

- ``bot.status``: every status change (started, paused, resumed, stopped, errored).
- ``bot.trade``: a run closed trades on a tick (one event per run and tick).
- ``bot.failure``: a tick failed for a run (counted towards ``BOT_MAX_FAILURES``).

Notifications: ``bot.started`` and ``bot.stopped`` (by the owner or the schedule),
``bot.paused`` (by the schedule only: the owner knows what they paused),
``bot.error`` (moved to ``error``) and ``bot.trade`` (off unless the owner turns it on).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from models.db import session as db
from models.people.notifications import notify
from models.people.outbox import stage_event

# What a status change is called, by the status the bot moves to.
ACTIONS = ("started", "paused", "resumed", "stopped", "errored")
MAX_TRADES_PER_EVENT = 20  # a long catch-up's trades are counted, the latest few listed
MAX_BOTS_PER_NOTIFICATION = 20
ERROR_CHARS = 500


def _notification_for(action: str, by: str) -> str | None:
    if action == "started":
        return "bot.started"
    if action == "stopped":
        return "bot.stopped"
    if action == "paused" and by == "schedule":
        return "bot.paused"
    if action == "errored":
        return "bot.error"
    return None


def bot_status(
    owner_id: uuid.UUID,
    bot_id: uuid.UUID,
    bot_name: str,
    action: str,
    *,
    status: str,
    by: str = "owner",
    run_id: uuid.UUID | None = None,
    error: str | None = None,
) -> None:
    """A bot's status changed: stage ``bot.status`` and notify when the action warrants it.

    ``by`` is ``owner``, ``schedule`` or ``system`` (a run moved to ``error``).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown bot action {action!r}")
    payload: dict[str, Any] = {
        "bot_id": str(bot_id),
        "bot_name": bot_name,
        "run_id": None if run_id is None else str(run_id),
        "status": status,
        "action": action,
        "by": by,
    }
    if error is not None:
        payload["error"] = error[:ERROR_CHARS]
    stage_event(db(), owner_id, "bot.status", payload)
    event = _notification_for(action, by)
    if event is not None:
        notify(owner_id, event, payload)


def bot_failure(
    owner_id: uuid.UUID, bot_id: uuid.UUID, run_id: uuid.UUID, error: str, candle_ts: int
) -> None:
    """A tick failed for a run: stage ``bot.failure`` (no notification: ``bot.error`` is
    the one that says the bot gave up)."""
    payload = {
        "bot_id": str(bot_id),
        "run_id": str(run_id),
        "candle_ts": candle_ts,
        "error": error[:ERROR_CHARS],
    }
    stage_event(db(), owner_id, "bot.failure", payload)


@dataclass
class RunTrades:
    """The trades one run closed on a tick, as JSON-safe records (oldest first)."""

    bot_id: uuid.UUID
    bot_name: str
    run_id: uuid.UUID
    trades: list[dict[str, Any]] = field(default_factory=list)


def bot_trades(owner_id: uuid.UUID, candle_ts: int, runs: list[RunTrades]) -> None:
    """Some of the owner's runs closed trades on the tick of ``candle_ts``.

    One ``bot.trade`` event per run, and one ``bot.trade`` notification for all of them:
    a tick chunk costs each trading owner one settings lookup, and none when nobody traded.
    """
    summary: list[dict[str, Any]] = []
    total = 0
    for run in runs:
        payload = {
            "bot_id": str(run.bot_id),
            "bot_name": run.bot_name,
            "run_id": str(run.run_id),
            "candle_ts": candle_ts,
            "count": len(run.trades),
            "trades": run.trades[-MAX_TRADES_PER_EVENT:],
        }
        stage_event(db(), owner_id, "bot.trade", payload)
        summary.append({k: payload[k] for k in ("bot_id", "bot_name", "run_id", "count")})
        total += len(run.trades)
    if summary:
        data = {
            "candle_ts": candle_ts,
            "count": total,
            "bots": summary[:MAX_BOTS_PER_NOTIFICATION],
        }
        notify(owner_id, "bot.trade", data)
