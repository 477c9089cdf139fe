"""Notification delivery jobs: one email, and the sweep that re-queues what Redis missed.

``deliver_email`` is the job the outbox relay queues for each pending email delivery
(``deliver-<delivery id>`` on ``notifications``, with RQ's Retry backoff). It is safe
to run any number of times: only a ``pending`` delivery is sent, under a row lock held
until the row says ``sent``. A failed send raises, so RQ retries it; while the job has
retries left the row stays ``pending`` with the error, and the last failure ends it
``failed``. The recipient's address is never logged nor put in an error.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app
from redis import Redis
from rq import get_current_job
from rq.job import Job, JobStatus

from models.db import session as db
from models.people import deliveries
from settings import Settings
from workers.event_mail import render_event
from workers.mail import send
from workers.outbox_relay import DELIVERY_RETRY, delivery_job_id, enqueue_deliveries
from workers.queues import redis_connection

log = structlog.get_logger(__name__)

SWEEP_LIMIT = 1000
# Failed attempts after which a delivery still pending (its job lost between retries) is
# given up rather than queued again with fresh retries, so the sweep cannot loop forever.
MAX_ATTEMPTS = (DELIVERY_RETRY.max or 0) + 1
_WAITING = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


class DeliveryError(Exception):
    """A send failed; the message says why without the recipient's address."""


def _settings() -> Settings:
    settings: Settings = current_app.extensions["botyard.settings"]
    return settings


def _retry_follows() -> bool:
    """Whether RQ will run this job again if it fails now (a direct call: no)."""
    job = get_current_job()
    return bool(job is not None and job.retries_left)


def deliver_email(delivery_id: str) -> str:
    """Send one email delivery; returns what happened (``sent``, ``skipped`` or why not)."""
    settings = _settings()
    did = uuid.UUID(delivery_id)
    claimed = deliveries.claim(did, "email")
    if isinstance(claimed, str):
        log.info("email_delivery_not_pending", delivery_id=delivery_id, status=claimed)
        return claimed
    user, notification = claimed.user, claimed.notification
    if not deliveries.reachable(user):
        deliveries.finish(claimed.delivery, "skipped", datetime.now(UTC), "account unreachable")
        db.commit()
        log.info("email_delivery_skipped", delivery_id=delivery_id, user_id=str(user.id))
        return "skipped"
    address = user.email
    try:
        message = render_event(
            notification.event, address, user.username, notification.data, settings.frontend_url
        )
        send(message, settings.smtp_url, settings.mail_from)
    except Exception as exc:
        db.rollback()  # releases the row for the retry
        reason = f"{type(exc).__name__}: {exc}".replace(address, "<recipient>")
        final = not _retry_follows()
        deliveries.record_attempt_failed(did, reason, final=final, now=datetime.now(UTC))
        db.commit()
        log.warning(
            "email_delivery_failed", delivery_id=delivery_id, final=final, error=type(exc).__name__
        )
        # Not chained: the original exception may carry the address into RQ's log.
        raise DeliveryError(reason) from None
    deliveries.finish(claimed.delivery, "sent", datetime.now(UTC), None)
    db.commit()
    log.info("email_delivered", delivery_id=delivery_id, notification_event=notification.event)
    return "sent"


def _connection(settings: Settings) -> Redis:
    """The running job's Redis (the worker's), or a new client when called directly."""
    job = get_current_job()
    return job.connection if job is not None else redis_connection(settings)


def _queued_already(connection: Redis, delivery_id: uuid.UUID) -> bool:
    job = Job.fetch_many([delivery_job_id(delivery_id)], connection=connection)[0]
    return job is not None and job.get_status(refresh=False) in _WAITING


def sweep_deliveries(now: datetime | None = None) -> int:
    """Queue again the pending deliveries older than ``DELIVERY_SWEEP_GRACE_S``; returns how many.

    A delivery whose job is still queued, scheduled for a retry or running is left to
    it (the job id is the delivery's, so a re-queue could never double it anyway). One with
    ``MAX_ATTEMPTS`` failed attempts already recorded ends ``failed`` instead.
    """
    settings = _settings()
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(seconds=settings.delivery_sweep_grace_s)
    connection = _connection(settings)
    owed: list[tuple[uuid.UUID, str]] = []
    for delivery_id, channel, attempts in deliveries.stale_pending(cutoff, SWEEP_LIMIT):
        if _queued_already(connection, delivery_id):
            continue
        if attempts >= MAX_ATTEMPTS:
            deliveries.record_attempt_failed(
                delivery_id, "gave up: no outcome recorded", final=True, now=now
            )
            continue
        owed.append((delivery_id, channel))
    db.commit()
    if owed:
        enqueue_deliveries(connection, owed)
    log.info("deliveries_swept", requeued=len(owed))
    return len(owed)
