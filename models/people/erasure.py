"""Erasing an account whose deletion grace period is over.

Personal data is deleted table by table in committed batches, the activity rows the
person made are kept for the audit trail with their address, user agent and details
scrubbed, and last the ``users`` row is anonymised and stamped ``erased_at``. A crash
part-way leaves the account due, so the next pass resumes where this one stopped;
running it again on an erased account changes nothing. Policy: docs/accounts.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, select, update

from models.backtests.backtests import Backtest, BacktestEquity, BacktestTrade
from models.bots.bots import Bot
from models.bots.execution_logs import ExecutionLog
from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade
from models.db import session as db
from models.identity import names as naming
from models.identity.tables import AuthSession, PasswordResetToken, User
from models.people.tables import (
    AccountSettings,
    Activity,
    DataExport,
    EmailChangeToken,
    Notification,
    NotificationDelivery,
    Webhook,
    WebhookAttempt,
)
from models.retention import purge_rows

ERASE_BATCH = 5_000
ERASED_DOMAIN = "deleted.invalid"  # .invalid never resolves, and registration refuses it
ERASED_NAME = "deleted user"
# Not a PHC string: argon2 refuses to verify against it, so no password ever matches.
UNUSABLE_PASSWORD = "!erased"  # noqa: S105 - a marker, not a password

Step = tuple[Table, ColumnElement[bool]]


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _steps(user_id: uuid.UUID) -> list[Step]:
    """What to delete, children before parents (each also cascades, but in bounded batches).

    Every condition walks an index (a child found through its parent's key), so a batch
    never scans another user's rows.
    """
    runs = select(BotRun.id).where(BotRun.owner_id == user_id)
    bots = select(Bot.id).where(Bot.owner_id == user_id)
    backtests = select(Backtest.id).where(Backtest.owner_id == user_id)
    hooks = select(Webhook.id).where(Webhook.user_id == user_id)
    notes = select(Notification.id).where(Notification.user_id == user_id)
    return [
        (_table(BotEquity), BotEquity.run_id.in_(runs)),
        (_table(BotTrade), BotTrade.run_id.in_(runs)),
        (_table(ExecutionLog), ExecutionLog.bot_id.in_(bots)),
        (_table(BotRun), BotRun.owner_id == user_id),
        (_table(BacktestEquity), BacktestEquity.backtest_id.in_(backtests)),
        (_table(BacktestTrade), BacktestTrade.backtest_id.in_(backtests)),
        (_table(Backtest), Backtest.owner_id == user_id),
        (_table(Bot), Bot.owner_id == user_id),
        (_table(WebhookAttempt), WebhookAttempt.webhook_id.in_(hooks)),
        (_table(NotificationDelivery), NotificationDelivery.notification_id.in_(notes)),
        (_table(Notification), Notification.user_id == user_id),
        (_table(Webhook), Webhook.user_id == user_id),
        (_table(AccountSettings), AccountSettings.user_id == user_id),
        (_table(EmailChangeToken), EmailChangeToken.user_id == user_id),
        (_table(DataExport), DataExport.user_id == user_id),
        (_table(PasswordResetToken), PasswordResetToken.user_id == user_id),
        (_table(AuthSession), AuthSession.user_id == user_id),
    ]


def _scrub_activities(user_id: uuid.UUID, batch: int) -> int:
    """Scrub the person's own activity rows and the details of rows about their account."""
    own = _scrubbable(Activity.actor_id == user_id, with_origin=True)
    about = _scrubbable(
        (Activity.object_type == "user") & (Activity.object_id == str(user_id)), with_origin=False
    )
    scrubbed = 0
    for where, values in (
        (own, {"ip": None, "user_agent": None, "data": func.jsonb_build_object()}),
        (about, {"data": func.jsonb_build_object()}),
    ):
        while True:
            victims = select(Activity.id).where(where).limit(batch).scalar_subquery()
            stmt = update(Activity).where(Activity.id.in_(victims)).values(**values)
            count = len(db.execute(stmt.returning(Activity.id)).all())
            db.commit()
            scrubbed += count
            if count < batch:
                break
    return scrubbed


def _scrubbable(where: ColumnElement[bool], with_origin: bool) -> ColumnElement[bool]:
    """``where`` narrowed to rows that still hold something to scrub (so batches end)."""
    left = [Activity.data != func.jsonb_build_object()]
    if with_origin:
        left += [Activity.ip.is_not(None), Activity.user_agent.is_not(None)]
    return where & or_(*left)


def _anonymise(user: User, now: datetime) -> None:
    email = f"deleted-{user.id}@{ERASED_DOMAIN}"
    user.email, user.email_key = email, naming.email_key(email)
    for width in (12, 24):  # 12 hex digits clash with nobody; 24 if someone chose that name
        username = f"deleted-{user.id.hex[:width]}"
        taken = db.scalar(
            select(User.id).where(
                User.username_key == naming.username_key(username), User.id != user.id
            )
        )
        if taken is None:
            break
    user.username, user.username_key = username, naming.username_key(username)
    user.display_name = ERASED_NAME
    user.bio = user.avatar_url = user.timezone = user.locale = None
    user.password_hash = UNUSABLE_PASSWORD
    user.is_active = False
    user.last_login_at = None
    user.roles = []
    user.erased_at = now


def due_for_erasure(now: datetime, limit: int) -> list[uuid.UUID]:
    """Ids of accounts whose grace period ended by ``now`` and that are not erased yet."""
    return list(
        db.scalars(
            select(User.id)
            .where(User.deletion_due_at <= now, User.erased_at.is_(None))
            .order_by(User.deletion_due_at, User.id)
            .limit(limit)
        )
    )


def erase_account(
    user_id: uuid.UUID,
    now: datetime,
    batch: int = ERASE_BATCH,
    after_step: Callable[[str], None] | None = None,
) -> bool:
    """Erase one account if it is due at ``now``; False when it is not (cancelled, erased).

    Commits after every batch. ``after_step`` (tests) is called with each table's name
    once its rows are gone, to cut a run short and prove the next one resumes.
    """
    user = db.get(User, user_id)
    if user is None or user.erased_at is not None:
        return False
    if user.deletion_due_at is None or user.deletion_due_at > now:
        return False
    for table, where in _steps(user_id):
        purge_rows(table, where, batch, max_batches=None)
        if after_step is not None:
            after_step(table.name)
    _scrub_activities(user_id, batch)
    user = db.scalar(
        select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or user.erased_at is not None:
        db.commit()
        return False
    _anonymise(user, now)
    db.commit()
    return True
