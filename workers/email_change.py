"""Email change mail: the confirmation link to the new address, the notice to the old one.

Both run on the ``notifications`` queue. The link job makes the secret itself (as the
password reset job does), so it exists only in the email: never in Redis, the database
or a log; the job's only argument is the request's id. Old tokens are purged hourly
(workers/schedule.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from flask import current_app

from models.db import session as db
from models.identity.tables import User
from models.people.email_changes import (
    arm_token,
    describe_ttl,
    purge_email_change_tokens,
)
from settings import Settings
from workers.mail import render, send

log = structlog.get_logger(__name__)


def _settings() -> Settings:
    settings: Settings = current_app.extensions["botyard.settings"]
    return settings


def send_email_change_link(request_id: str) -> str:
    """Arm a pending email change and mail its confirmation link to the new address.

    Returns ``"sent"``; ``"superseded"`` when the request was confirmed, replaced by a
    newer one or is gone; ``"no_account"`` when the account can no longer log in. A retry
    arms the request again, which voids the link that may not have been delivered.
    """
    settings = _settings()
    now = datetime.now(UTC)
    armed = arm_token(uuid.UUID(request_id), now, settings.email_change_ttl)
    if armed is None:
        db.rollback()
        log.info("email_change_link_skipped", reason="superseded", request_id=request_id)
        return "superseded"
    token, request = armed
    user = db.get(User, request.user_id)
    if user is None or not user.is_active or user.deletion_requested_at is not None:
        db.rollback()
        log.info("email_change_link_skipped", reason="no_active_account")
        return "no_account"
    new_email = request.new_email
    db.commit()
    # The token rides in the fragment: browsers never send it to a server or in a Referer.
    message = render(
        "email_change_confirm",
        new_email,
        username=user.username,
        new_email=new_email,
        link=f"{settings.frontend_url}/confirm-email#token={token}",
        valid_for=describe_ttl(settings.email_change_ttl),
    )
    send(message, settings.smtp_url, settings.mail_from)
    log.info("email_change_link_sent", request_id=request_id)
    return "sent"


def send_email_changed_notice(user_id: str, old_email: str) -> str:
    """Tell the old address that the account moved to another; ``"sent"`` or ``"no_account"``."""
    settings = _settings()
    user = db.get(User, uuid.UUID(user_id))
    if user is None:
        return "no_account"
    message = render(
        "email_changed_old_address",
        old_email,
        username=user.username,
        new_email_domain=user.email.rpartition("@")[2],
        forgot_link=f"{settings.frontend_url}/forgot-password",
    )
    send(message, settings.smtp_url, settings.mail_from)
    return "sent"


def purge_email_changes() -> int:
    """Delete email change tokens used or expired over a week ago; returns the count."""
    removed = purge_email_change_tokens(datetime.now(UTC))
    log.info("email_change_tokens_purged", count=removed)
    return removed
