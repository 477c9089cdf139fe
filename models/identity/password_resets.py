"""Password reset tokens: issue (newest wins), redeem once, purge.

The secret is 256 bits from :mod:`secrets`, sent to the user and never stored:
the table keeps its SHA-256, so a database leak reveals no usable link.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, update

from models.db import session as db
from models.errors import DomainError
from models.identity.tables import PasswordResetToken, User
from models.retention import purge_rows

TOKEN_BYTES = 32
INVALID_TOKEN = "This reset link is invalid or has expired; ask for a new one."  # noqa: S105


class InvalidResetToken(DomainError):
    """Unknown, expired or already used; one message for all, so none can be told apart."""

    status = 400

    def __init__(self) -> None:
        super().__init__(INVALID_TOKEN)


def token_digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_reset_token(user: User, now: datetime, ttl_seconds: int) -> str:
    """A new token for ``user``; older unused ones stop working. Returns the secret."""
    db.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now, used_reason="superseded")
    )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=token_digest(token),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    db.flush()
    return token


def redeem_reset_token(token: str, now: datetime) -> uuid.UUID:
    """Mark the token used and return its user's id; :class:`InvalidResetToken` otherwise.

    One UPDATE does the check and the marking, so two concurrent redemptions of the
    same token cannot both succeed.
    """
    user_id: uuid.UUID | None = db.scalar(
        update(PasswordResetToken)
        .where(
            PasswordResetToken.token_hash == token_digest(token),
            PasswordResetToken.used_at.is_(None),
            PasswordResetToken.expires_at > now,
        )
        .values(used_at=now, used_reason="used")
        .returning(PasswordResetToken.user_id)
    )
    if user_id is None:
        raise InvalidResetToken()
    return user_id


def purge_reset_tokens(now: datetime, keep_days: int = 7) -> int:
    """Delete tokens used or expired more than ``keep_days`` ago; returns the count."""
    cutoff = now - timedelta(days=keep_days)
    expired = or_(PasswordResetToken.expires_at < cutoff, PasswordResetToken.used_at < cutoff)
    return purge_rows(PasswordResetToken, expired)
