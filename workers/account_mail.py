"""Account emails: the password reset link (the "password changed" notice is a
notification: ``account.password_changed``, workers/notify.py).

It runs on the ``notifications`` queue. The reset job, not the web request, looks
the account up and issues the token, so ``/auth/password/forgot`` does the same
work whether or not the account exists, and the secret exists only in the email
(it never passes through Redis or a log).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from flask import current_app

from models.db import session as db
from models.identity.password_resets import issue_reset_token
from models.identity.users import find_by_login
from models.people.activities import record
from settings import Settings
from workers.mail import render, send

log = structlog.get_logger(__name__)


def _settings() -> Settings:
    settings: Settings = current_app.extensions["botyard.settings"]
    return settings


def send_password_reset(email: str, ip: str | None = None, user_agent: str | None = None) -> str:
    """Mail a reset link to the active account with that email; returns what happened.

    ``"sent"``, or ``"no_account"`` when there is no active account (nothing is sent,
    and the caller was told the same thing either way). A retry issues a new token,
    which supersedes the one that may not have been delivered. The account's activity
    gets a ``password.reset_requested`` row (from the request's ``ip`` and
    ``user_agent``) in the token's transaction: only here is the account known, and the
    request learns nothing either way.
    """
    settings = _settings()
    user = find_by_login(email) if "@" in email else None
    if user is None or not user.is_active:
        log.info("password_reset_skipped", reason="no_active_account")
        return "no_account"
    now = datetime.now(UTC)
    token = issue_reset_token(user, now, settings.password_reset_ttl)
    if settings.activity_tracking:
        record(
            "password.reset_requested",
            user.id,
            object_type="user",
            object_id=user.id,
            ip=ip,
            user_agent=user_agent,
            created_at=now,
        )
    db.commit()
    # The token rides in the fragment: browsers never send it to a server or in a Referer.
    link = f"{settings.frontend_url}/reset-password#token={token}"
    message = render(
        "password_reset",
        user.email,
        username=user.username,
        link=link,
        minutes=settings.password_reset_ttl // 60,
    )
    send(message, settings.smtp_url, settings.mail_from)
    log.info("password_reset_sent", user_id=str(user.id))
    return "sent"
