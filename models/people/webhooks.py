"""Webhooks: a user's endpoints, their signing secrets, delivery attempts and auto-disable.

The views and the delivery job both go through here. A webhook's secret is made
here, returned once by :func:`create_webhook` and never again; it signs each
delivery (:func:`signature`). The URL is checked by models/people/webhook_urls.py.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update

from models.db import session as db
from models.errors import Conflict, NotFound
from models.identity.tables import User
from models.people import webhook_urls
from models.people.notifications import notify
from models.people.tables import NotificationDelivery, Webhook, WebhookAttempt

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
MAX_ERROR_LENGTH = 500


def new_secret() -> str:
    """A fresh signing secret: ``whsec_`` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Botyard-Signature`` value: ``v1=`` and hex HMAC-SHA256 of ``"{ts}." + body``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def create_webhook(
    user_id: uuid.UUID,
    url: str,
    events: Sequence[str],
    description: str | None,
    *,
    limit: int,
    allow_loopback: bool,
) -> tuple[Webhook, str]:
    """Add a webhook for ``user_id``; returns it with its secret (shown to the owner once).

    Raises :class:`~models.people.webhook_urls.UnsafeUrl` (422) for a URL the SSRF
    policy refuses and :class:`Conflict` when the user already has ``limit`` webhooks.
    """
    webhook_urls.vet(url, allow_loopback)
    # Creates by one user take turns (a lock on their row), so two cannot both pass the cap.
    db.execute(select(User.id).where(User.id == user_id).with_for_update())
    count = db.scalar(select(func.count()).select_from(Webhook).where(Webhook.user_id == user_id))
    if (count or 0) >= limit:
        raise Conflict(f"You already have {limit} webhooks, the most allowed; delete one first.")
    secret = new_secret()
    hook = Webhook(
        id=uuid.uuid4(),
        user_id=user_id,
        url=url,
        events=sorted(set(events)),
        secret=secret,
        description=description,
        is_active=True,
        consecutive_failures=0,
        created_at=datetime.now(UTC),
    )
    db.add(hook)
    db.flush()
    return hook, secret


def get_owned_webhook(user_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
    """The caller's webhook; anyone else's is as unknown as a missing one (:class:`NotFound`)."""
    hook = db.get(Webhook, webhook_id)
    if hook is None or hook.user_id != user_id:
        raise NotFound("No webhook with that id.")
    return hook


def webhooks_of(user_id: uuid.UUID) -> Any:
    """The select of ``user_id``'s webhooks, newest first."""
    return (
        select(Webhook)
        .where(Webhook.user_id == user_id)
        .order_by(Webhook.created_at.desc(), Webhook.id)
    )


def update_webhook(hook: Webhook, changes: dict[str, Any], *, allow_loopback: bool) -> Webhook:
    """Change events, description or ``is_active``.

    ``is_active=True`` re-enables a disabled webhook: its URL is checked again (DNS may
    have changed since) and its failure count starts over. ``False`` pauses it.
    """
    if "events" in changes:
        hook.events = sorted(set(changes["events"]))
    if "description" in changes:
        hook.description = changes["description"]
    if changes.get("is_active") is True and not hook.is_active:
        webhook_urls.vet(hook.url, allow_loopback)
        hook.is_active = True
        hook.consecutive_failures = 0
        hook.disabled_at = None
        hook.disabled_reason = None
    elif changes.get("is_active") is False and hook.is_active:
        hook.is_active = False
        hook.disabled_at = datetime.now(UTC)
        hook.disabled_reason = "Paused by its owner."
    db.flush()
    return hook


def delete_webhook(hook: Webhook) -> None:
    """Delete a webhook and its attempts; its pending deliveries are skipped when they run."""
    db.delete(hook)
    db.flush()


def attempts_page(webhook_id: uuid.UUID, cursor: int | None, limit: int) -> list[WebhookAttempt]:
    """Up to ``limit`` attempts at ``webhook_id``, newest first, older than ``cursor`` if given."""
    stmt = select(WebhookAttempt).where(WebhookAttempt.webhook_id == webhook_id)
    if cursor is not None:
        stmt = stmt.where(WebhookAttempt.id < cursor)
    return list(db.scalars(stmt.order_by(WebhookAttempt.id.desc()).limit(limit)))


def record_attempt(
    hook: Webhook,
    delivery: NotificationDelivery | None,
    event: str,
    attempt: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> WebhookAttempt:
    """Add one attempt's row (``error`` None means it succeeded)."""
    row = WebhookAttempt(
        webhook_id=hook.id,
        delivery_id=delivery.id if delivery is not None else None,
        event=event,
        attempt=attempt,
        succeeded=error is None,
        status_code=status_code,
        error=error[:MAX_ERROR_LENGTH] if error else None,
        duration_ms=duration_ms,
        created_at=datetime.now(UTC),
    )
    db.add(row)
    return row


def count_success(hook: Webhook) -> None:
    """A delivery got through: the run of failures is over."""
    db.execute(update(Webhook).where(Webhook.id == hook.id).values(consecutive_failures=0))


def count_failure(hook: Webhook, max_failures: int, now: datetime) -> bool:
    """Add a failure to the webhook's run; True when this one disabled it.

    Disabling tells the owner (``webhook.disabled``). The hook is inactive before
    ``notify()`` looks for subscribed webhooks, so the news never goes to the hook
    that just failed. Atomic updates keep concurrent deliveries from double counting.
    """
    failures = db.scalar(
        update(Webhook)
        .where(Webhook.id == hook.id)
        .values(consecutive_failures=Webhook.consecutive_failures + 1)
        .returning(Webhook.consecutive_failures)
    )
    if failures is None or failures < max_failures:
        return False
    reason = f"Disabled after {failures} failed deliveries in a row."
    disabled = db.scalar(
        update(Webhook)
        .where(Webhook.id == hook.id, Webhook.is_active.is_(True))
        .values(is_active=False, disabled_at=now, disabled_reason=reason)
        .returning(Webhook.id)
    )
    if disabled is None:
        return False  # already disabled (by the owner, or by a concurrent delivery)
    db.refresh(hook)
    notify(
        hook.user_id,
        "webhook.disabled",
        {
            "webhook_id": str(hook.id),
            "host": urlsplit(hook.url).hostname or "",
            "description": hook.description,
            "consecutive_failures": failures,
            "reason": reason,
        },
    )
    return True
