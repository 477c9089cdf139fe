"""Delivery rows: claiming one for its job, recording how it ended, finding what is owed.

A delivery job works on one row: it claims it (a row lock held while it sends, so two
runs of the same job never both send), then records ``sent``, ``skipped`` or, once the
retries are spent, ``failed``. The sweep and the daily digest read the open rows here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from models.db import session as db
from models.identity.tables import User
from models.people.tables import Notification, NotificationDelivery

ERROR_MAX = 500


@dataclass(frozen=True)
class Claimed:
    """A pending delivery locked for its job, with what it needs to render and address it."""

    delivery: NotificationDelivery
    notification: Notification
    user: User


def claim(delivery_id: uuid.UUID, channel: str) -> Claimed | str:
    """Lock a pending ``channel`` delivery for its job, or say why there is nothing to do.

    Returns ``"missing"``, ``"busy"`` (another run holds it), or the status of a
    delivery that is no longer pending (``"sent"``, ``"failed"``, ...). On success the
    row stays locked until the caller commits or rolls back.
    """
    delivery = db.scalar(
        select(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.channel == channel)
        .with_for_update(skip_locked=True)
    )
    if delivery is None:
        exists = db.scalar(
            select(NotificationDelivery.status).where(NotificationDelivery.id == delivery_id)
        )
        db.rollback()
        return "missing" if exists is None else "busy"
    if delivery.status != "pending":
        status = delivery.status
        db.rollback()
        return status
    notification = db.get(Notification, delivery.notification_id)
    user = db.get(User, delivery.user_id)
    if notification is None or user is None:  # cascades make this a race with a deletion
        db.rollback()
        return "missing"
    return Claimed(delivery, notification, user)


def reachable(user: User) -> bool:
    """Whether mail may go to ``user``: not erased, not disabled by an administrator.

    An account waiting out its deletion grace period is inactive but still hears
    about it (the deletion notice, a ready export); an erased one has no address left.
    """
    if user.erased_at is not None:
        return False
    return user.is_active or user.deletion_requested_at is not None


def finish(delivery: NotificationDelivery, status: str, now: datetime, error: str | None) -> None:
    """Record an attempt that ended the delivery (``sent``, ``skipped`` or ``failed``)."""
    delivery.status = status
    delivery.attempts += 1
    delivery.finished_at = now
    delivery.last_error = error[:ERROR_MAX] if error else None


def record_attempt_failed(
    delivery_id: uuid.UUID, error: str, *, final: bool, now: datetime
) -> None:
    """Count a failed attempt; ``final`` (no retry left) ends the delivery ``failed``."""
    values: dict[str, object] = {
        "attempts": NotificationDelivery.attempts + 1,
        "last_error": error[:ERROR_MAX],
    }
    if final:
        values.update(status="failed", finished_at=now)
    db.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id, NotificationDelivery.status == "pending")
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def stale_pending(older_than: datetime, limit: int) -> list[tuple[uuid.UUID, str, int]]:
    """(id, channel, attempts) of pending deliveries made before ``older_than``, oldest first."""
    rows = db.execute(
        select(NotificationDelivery.id, NotificationDelivery.channel, NotificationDelivery.attempts)
        .where(
            NotificationDelivery.status == "pending",
            NotificationDelivery.created_at < older_than,
        )
        .order_by(NotificationDelivery.created_at)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in rows]


def digest_owners(before: datetime, limit: int) -> list[uuid.UUID]:
    """Users with email deliveries waiting for the digest, made before ``before``."""
    rows = db.scalars(
        select(NotificationDelivery.user_id)
        .where(
            NotificationDelivery.status == "digest",
            NotificationDelivery.created_at < before,
        )
        .distinct()
        .limit(limit)
    )
    return list(rows)


def claim_digest(
    user_id: uuid.UUID, before: datetime
) -> list[tuple[NotificationDelivery, Notification]]:
    """Lock the user's digest deliveries made before ``before``, oldest first, with their events.

    Rows another run holds are skipped, so two digest runs never mail the same item.
    """
    rows = db.execute(
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(
            NotificationDelivery.user_id == user_id,
            NotificationDelivery.status == "digest",
            NotificationDelivery.created_at < before,
        )
        .order_by(NotificationDelivery.created_at, Notification.id)
        .with_for_update(of=NotificationDelivery, skip_locked=True)
    )
    return [(row[0], row[1]) for row in rows]
