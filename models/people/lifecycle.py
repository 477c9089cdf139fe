"""Account deletion: asking for it (deactivate at once), cancelling it by logging in.

The erasure itself, once the grace period is over, is :mod:`models.people.erasure`.
The policy is in docs/accounts.md, "Export and deletion".
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from models.backtests.backtests import ACTIVE_BACKTEST_STATUSES, Backtest, request_cancel
from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
from models.bots.runs import stop_bot
from models.db import session as db
from models.errors import Conflict
from models.identity import sessions
from models.identity.quotas import lock_owner
from models.identity.tables import User
from models.identity.users import awaiting_deletion, count_admins
from models.people.notifications import notify

REVOKE_REASON = "account_deleted"


@dataclass(frozen=True)
class ScheduledDeletion:
    """When the account will be erased, and the sessions its request revoked."""

    due_at: datetime
    revoked: list[uuid.UUID]


def schedule_deletion(user: User, now: datetime, grace_days: int) -> ScheduledDeletion:
    """Deactivate ``user`` now and schedule their erasure ``grace_days`` later.

    Revokes every session, stops their running and paused bots, cancels their queued and
    running backtests and notifies them (``account.deletion_scheduled``, always emailed).
    The caller commits, then marks the revoked sessions in the token cache.
    :class:`Conflict` for the last active admin.
    """
    lock_owner(user.id)  # the lock order of bot starts: owner first, then the bot
    if "admin" in user.role_names and count_admins() <= 1:
        raise Conflict("You are the last active admin; make someone else an admin first.")
    due = now + timedelta(days=grace_days)
    user.is_active = False
    user.deletion_requested_at = now
    user.deletion_due_at = due
    revoked = sessions.revoke_all(user.id, now, reason=REVOKE_REASON)
    active_bots = db.scalars(
        select(Bot.id)
        .where(Bot.owner_id == user.id, Bot.status.in_(ACTIVE_BOT_STATUSES))
        .order_by(Bot.id)
    ).all()
    for bot_id in active_bots:
        stop_bot(user.id, bot_id, now)
    backtests = db.scalars(
        select(Backtest).where(
            Backtest.owner_id == user.id, Backtest.status.in_(ACTIVE_BACKTEST_STATUSES)
        )
    ).all()
    for backtest in backtests:
        request_cancel(backtest, now)
    notify(user.id, "account.deletion_scheduled", {"due_at": due.isoformat()})
    db.flush()
    return ScheduledDeletion(due_at=due, revoked=revoked)


def cancel_deletion(user: User, now: datetime) -> bool:
    """Reactivate an account awaiting deletion (its owner just logged in); False if it was not.

    Bots stay stopped and cancelled backtests stay cancelled: the owner starts again what
    they want. The caller records the ``account.deletion_cancelled`` activity and commits.
    """
    if user.is_active or user.deletion_requested_at is None or not awaiting_deletion(user, now):
        return False
    user.is_active = True
    user.deletion_requested_at = None
    user.deletion_due_at = None
    db.flush()
    return True
