"""Webhook delivery jobs (``notifications`` queue): a notification or a ping, signed, POSTed.

``deliver_webhook`` is queued by the outbox relay for each webhook delivery row and
retried by RQ with WEBHOOK_RETRY's backoff (workers/outbox_relay.py); every attempt
is a ``webhook_attempts`` row. The URL is vetted again before each attempt and the
request goes to the vetted address (workers/webhook_http.py). docs/webhooks.md has
the payload, the headers and how a receiver verifies them.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from flask import current_app
from sqlalchemy import select

from models.db import session as db
from models.people import webhook_urls
from models.people.notifications import notification_payload
from models.people.tables import Notification, NotificationDelivery, Webhook
from models.people.webhooks import (
    count_failure,
    count_success,
    record_attempt,
    signature,
)
from settings import Settings
from workers.outbox_relay import WEBHOOK_RETRY
from workers.webhook_http import Outcome, post

log = structlog.get_logger(__name__)

USER_AGENT = "Botyard-Webhooks/1"
PING_EVENT = "ping"
# The first try and every retry RQ makes; the last failure marks the delivery failed.
MAX_ATTEMPTS = 1 + (WEBHOOK_RETRY.max or 0)
FINISHED = ("sent", "failed", "skipped")


class WebhookDeliveryFailed(Exception):
    """An attempt failed; raised so that RQ retries the job after its backoff."""


def _settings() -> Settings:
    settings: Settings = current_app.extensions["botyard.settings"]
    return settings


def signed_request(
    hook: Webhook, message_id: str, event: str, created_at: datetime, data: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the headers (with a fresh timestamp and its signature) of a delivery."""
    body = orjson.dumps(
        {"id": message_id, "event": event, "created_at": created_at.isoformat(), "data": data}
    )
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Botyard-Event": event,
        "X-Botyard-Delivery": message_id,
        "X-Botyard-Timestamp": str(timestamp),
        "X-Botyard-Signature": signature(hook.secret, timestamp, body),
    }
    return body, headers


def send(hook: Webhook, body: bytes, headers: dict[str, str], settings: Settings) -> Outcome:
    """Vet the hook's URL again (DNS can change) and POST to the address just vetted."""
    try:
        target = webhook_urls.vet(hook.url, settings.webhook_allow_loopback)
    except webhook_urls.UnsafeUrl as exc:
        return Outcome(None, f"Refused: {exc.message}", 0)
    return post(target, body, headers, settings.webhook_timeout_s)


def deliver_webhook(delivery_id: str) -> str:
    """Deliver one notification to one webhook; returns what happened.

    ``"sent"``; ``"skipped"`` (the hook was deleted or disabled); ``"disabled"`` (this
    failure disabled the hook); ``"missing"``, ``"busy"`` (another worker has it) or
    the status of a delivery already finished. Raises :class:`WebhookDeliveryFailed`
    after recording a failed attempt, so RQ retries with backoff.
    """
    settings = _settings()
    key = uuid.UUID(delivery_id)
    # The row lock makes concurrent runs of one delivery take turns: nothing is sent twice.
    delivery = db.scalar(
        select(NotificationDelivery)
        .where(NotificationDelivery.id == key, NotificationDelivery.channel == "webhook")
        .with_for_update(skip_locked=True)
    )
    if delivery is None:
        db.rollback()
        return "busy" if db.get(NotificationDelivery, key) is not None else "missing"
    if delivery.status in FINISHED:
        db.rollback()
        return delivery.status
    hook = db.get(Webhook, uuid.UUID(delivery.target))
    notification = db.get(Notification, delivery.notification_id)
    if hook is None or not hook.is_active or notification is None:
        reason = (
            "Webhook deleted."
            if hook is None
            else "Webhook disabled."
            if not hook.is_active
            else "Notification deleted."
        )
        _finish(delivery, "skipped", reason)
        db.commit()
        log.info("webhook_delivery_skipped", delivery_id=delivery_id, reason=reason)
        return "skipped"
    attempt = delivery.attempts + 1
    body, headers = signed_request(
        hook,
        str(delivery.id),
        notification.event,
        notification.created_at,
        notification_payload(notification),
    )
    outcome = send(hook, body, headers, settings)
    delivery.attempts = attempt
    record_attempt(
        hook,
        delivery,
        notification.event,
        attempt,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    if outcome.error is None:
        count_success(hook)
        _finish(delivery, "sent", None)
        db.commit()
        log.info("webhook_delivered", delivery_id=delivery_id, attempt=attempt)
        return "sent"
    return _failed(hook, delivery, outcome, attempt, settings)


def _failed(
    hook: Webhook,
    delivery: NotificationDelivery,
    outcome: Outcome,
    attempt: int,
    settings: Settings,
) -> str:
    """Record a failed attempt: disable the hook, give up, or raise for RQ's next retry."""
    now = datetime.now(UTC)
    delivery.last_error = (outcome.error or "")[:500]
    disabled = count_failure(hook, settings.webhook_max_failures, now)
    if disabled or attempt >= MAX_ATTEMPTS:
        _finish(delivery, "failed", outcome.error)
    db.commit()
    log.warning(
        "webhook_delivery_failed",
        delivery_id=str(delivery.id),
        webhook_id=str(hook.id),
        attempt=attempt,
        status_code=outcome.status_code,
        error=outcome.error,
        disabled=disabled,
    )
    if disabled:
        return "disabled"  # nothing more to try: the next runs would skip anyway
    raise WebhookDeliveryFailed(f"attempt {attempt} failed: {outcome.error}")


def _finish(delivery: NotificationDelivery, status: str, error: str | None) -> None:
    delivery.status = status
    delivery.finished_at = datetime.now(UTC)
    if error is not None:
        delivery.last_error = error[:500]


def ping_webhook(webhook_id: str, ping_id: str) -> str:
    """Send a signed ``ping`` to a webhook, enabled or not: ``"sent"``, ``"failed"``, ``"missing"``.

    A ping is a test: its attempt is recorded, but it is not retried and does not
    count towards (or reset) the run of failures that disables a hook.
    """
    settings = _settings()
    hook = db.get(Webhook, uuid.UUID(webhook_id))
    if hook is None:
        return "missing"
    data = {"webhook_id": str(hook.id), "description": hook.description, "events": hook.events}
    body, headers = signed_request(hook, ping_id, PING_EVENT, datetime.now(UTC), data)
    outcome = send(hook, body, headers, settings)
    record_attempt(
        hook,
        None,
        PING_EVENT,
        1,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
    )
    db.commit()
    log.info("webhook_pinged", webhook_id=webhook_id, ok=outcome.error is None)
    return "sent" if outcome.error is None else "failed"
