"""``notify()``: the one call the rest of the code makes to tell a user something.

It stores the in-app notification and one delivery row per enabled channel in the
caller's transaction, and stages the delivery jobs and the live event for after the
commit (models/people/outbox.py). Reading, marking read and the unread count live here too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from models.db import session as db
from models.errors import Invalid, NotFound
from models.people import outbox
from models.people.events import EVENTS
from models.people.preferences import channels_for, effective_settings
from models.people.tables import Notification, NotificationDelivery, Webhook

EMAIL_TARGET = "email"


def notify(user_id: uuid.UUID, event: str, data: dict[str, Any]) -> Notification | None:
    """Tell ``user_id`` that ``event`` happened; None when their settings silence it entirely.

    ``data`` is small JSON (ids, names, figures) that templates and webhooks show;
    never secrets. Flushes but does not commit: the notification is part of the
    caller's transaction, so it exists exactly when what it describes does.
    """
    if event not in EVENTS:
        raise Invalid(f"Unknown notification event {event!r}.")
    channels = channels_for(effective_settings(user_id), event)
    subscribed: list[Webhook] = []
    if channels["webhook"]:
        active = select(Webhook).where(Webhook.user_id == user_id, Webhook.is_active.is_(True))
        subscribed = [hook for hook in db.scalars(active) if event in hook.events]
    emailed = channels["email"] or channels["digest"]
    if not (channels["in_app"] or emailed or subscribed):
        return None
    notification = Notification(
        user_id=user_id,
        event=event,
        data=data,
        in_app=channels["in_app"],
        created_at=datetime.now(UTC),
    )
    db.add(notification)
    db.flush()
    deliveries = []
    if emailed:
        status = "pending" if channels["email"] else "digest"
        deliveries.append(
            NotificationDelivery(
                notification_id=notification.id,
                user_id=user_id,
                channel="email",
                target=EMAIL_TARGET,
                status=status,
            )
        )
    deliveries.extend(
        NotificationDelivery(
            notification_id=notification.id,
            user_id=user_id,
            channel="webhook",
            target=str(hook.id),
            status="pending",
        )
        for hook in subscribed
    )
    for delivery in deliveries:
        delivery.id = uuid.uuid4()
        db.add(delivery)
    db.flush()
    staged = outbox.staged(db())
    staged.deliveries.extend((d.id, d.channel) for d in deliveries if d.status == "pending")
    if notification.in_app:
        staged.events.append((user_id, "notification", notification_payload(notification)))
    return notification


def notification_payload(notification: Notification) -> dict[str, Any]:
    """The JSON form of a notification, as the API, the live stream and webhooks show it."""
    return {
        "id": notification.id,
        "event": notification.event,
        "data": notification.data,
        "created_at": notification.created_at.isoformat() if notification.created_at else None,
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


MAX_PAGE = 100


def list_notifications(
    user_id: uuid.UUID, *, unread: bool | None, before: int | None, limit: int
) -> list[Notification]:
    """The user's in-app notifications, newest first, ids below ``before`` (the cursor).

    ``unread`` True: only unread; False: only read; None: all. Served by the
    (user_id, id) index, and by the partial unread index for ``unread=True``.
    """
    stmt = select(Notification).where(Notification.user_id == user_id, Notification.in_app)
    if unread is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif unread is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    if before is not None:
        stmt = stmt.where(Notification.id < before)
    return list(db.scalars(stmt.order_by(Notification.id.desc()).limit(min(limit, MAX_PAGE + 1))))


def unread_count(user_id: uuid.UUID) -> int:
    """How many of the user's in-app notifications are unread (the partial index counts them)."""
    query = select(func.count()).where(
        Notification.user_id == user_id, Notification.in_app, Notification.read_at.is_(None)
    )
    return int(db.scalar(query) or 0)


def mark_read(user_id: uuid.UUID, notification_id: int, now: datetime) -> Notification:
    """Mark one of the user's in-app notifications read (again: no change); NotFound otherwise."""
    notification = db.scalar(
        select(Notification).where(
            Notification.id == notification_id,
            Notification.user_id == user_id,
            Notification.in_app,
        )
    )
    if notification is None:
        raise NotFound("No notification with that id.")
    if notification.read_at is None:
        notification.read_at = now
    return notification


def mark_all_read(user_id: uuid.UUID, now: datetime) -> int:
    """Mark every unread in-app notification of the user read; returns how many changed."""
    result = db.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.in_app,
            Notification.read_at.is_(None),
        )
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
