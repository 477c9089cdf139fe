"""Email changes: a confirmation token mailed to the new address, redeemed once.

As with password resets (models/identity/password_resets.py), the secret is 256 bits
from :mod:`secrets`, exists only in the email, and the table keeps its SHA-256. A new
request supersedes every older pending one; the address changes only on confirmation,
when it is checked for a clash again (someone may have registered it meanwhile).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from models.db import session as db
from models.errors import Conflict, DomainError
from models.identity import names as naming
from models.identity.password_resets import token_digest
from models.identity.tables import User
from models.people.tables import EmailChangeToken
from models.retention import purge_rows

TOKEN_BYTES = 32
INVALID_TOKEN = "This confirmation link is invalid or has expired; ask for a new one."  # noqa: S105
TAKEN = "That email is already registered."


class InvalidEmailChangeToken(DomainError):
    """Unknown, expired, used or superseded: one message for all, so none can be told apart."""

    status = 400

    def __init__(self) -> None:
        super().__init__(INVALID_TOKEN)


@dataclass(frozen=True)
class EmailChanged:
    """The outcome of a confirmation: whose address changed, from what, to what."""

    user: User
    old_email: str
    new_email: str


def describe_ttl(seconds: int) -> str:
    """A link lifetime in words: ``24 hours``, ``30 minutes``."""
    return f"{seconds // 3600} hours" if seconds >= 7200 else f"{seconds // 60} minutes"


def email_taken(email: str, by_other_than: uuid.UUID) -> bool:
    """Whether another account already uses ``email`` (compared by its key)."""
    key = naming.email_key(email)
    return bool(db.scalar(select(exists().where(User.email_key == key, User.id != by_other_than))))


def supersede_pending(user_id: uuid.UUID, now: datetime) -> int:
    """Stop every unused token of ``user_id`` from working; returns how many."""
    result = db.execute(
        update(EmailChangeToken)
        .where(EmailChangeToken.user_id == user_id, EmailChangeToken.used_at.is_(None))
        .values(used_at=now, used_reason="superseded")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def request_email_change(
    user: User, new_email: str, now: datetime, ttl_seconds: int
) -> EmailChangeToken:
    """Record a request to move ``user`` to ``new_email``; older pending ones stop working.

    The row's hash is of a secret nobody keeps, so it confirms nothing until the mail job
    arms it (:func:`arm_token`): the secret is then made where it is mailed.
    """
    supersede_pending(user.id, now)
    row = EmailChangeToken(
        user_id=user.id,
        new_email=naming.display_email(new_email),
        token_hash=token_digest(secrets.token_urlsafe(TOKEN_BYTES)),
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    db.add(row)
    db.flush()
    return row


def arm_token(
    request_id: uuid.UUID, now: datetime, ttl_seconds: int
) -> tuple[str, EmailChangeToken] | None:
    """A fresh secret for a pending request, and the request; None once used or superseded.

    A retried mail job arms the request again, so only the last link sent works.
    """
    row = db.scalars(
        select(EmailChangeToken).where(EmailChangeToken.id == request_id).with_for_update()
    ).one_or_none()
    if row is None or row.used_at is not None:
        return None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row.token_hash = token_digest(token)
    row.expires_at = now + timedelta(seconds=ttl_seconds)
    db.flush()
    return token, row


def confirm_email_change(token: str, now: datetime) -> EmailChanged:
    """Give the token's account its new address and use the token up.

    :class:`InvalidEmailChangeToken` for an unknown, used or expired token, or an
    account that can no longer log in; :class:`Conflict` (the token stays usable) when
    another account took the address since the request. The token row is locked, so
    two concurrent confirmations cannot both succeed.
    """
    row = db.scalars(
        select(EmailChangeToken)
        .where(
            EmailChangeToken.token_hash == token_digest(token),
            EmailChangeToken.used_at.is_(None),
            EmailChangeToken.expires_at > now,
        )
        .with_for_update()
    ).one_or_none()
    user = db.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active or user.deletion_requested_at:
        raise InvalidEmailChangeToken()
    if email_taken(row.new_email, user.id):
        raise Conflict(TAKEN)
    old_email = user.email
    supersede_pending(user.id, now)  # this one too; then it is marked confirmed below
    row.used_at, row.used_reason = now, "confirmed"
    user.email = naming.display_email(row.new_email)
    user.email_key = naming.email_key(row.new_email)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(TAKEN) from exc
    return EmailChanged(user=user, old_email=old_email, new_email=user.email)


def purge_email_change_tokens(now: datetime, keep_days: int = 7) -> int:
    """Delete tokens used or expired more than ``keep_days`` ago; returns the count."""
    cutoff = now - timedelta(days=keep_days)
    old = or_(EmailChangeToken.expires_at < cutoff, EmailChangeToken.used_at < cutoff)
    return purge_rows(EmailChangeToken, old)
