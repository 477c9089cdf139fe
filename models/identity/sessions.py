"""Login sessions: start, rotate with reuse detection, revoke, purge.

Postgres is the source of truth for whether a session is alive; the API keeps
a short-lived copy of that answer in Redis to save a query per request.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from models.db import session as db
from models.errors import NotFound, Unauthorized
from models.identity.tables import AuthSession, User
from models.retention import purge_rows

USER_AGENT_MAX = 256


def new_jti() -> str:
    """A random token identifier (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class SessionState:
    """What the token check needs: is the session alive, and whose is it."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    active: bool


def start_session(
    user: User, now: datetime, ttl_seconds: int, ip: str | None, user_agent: str | None
) -> AuthSession:
    """Open a session for ``user`` with a fresh refresh-token family."""
    sess = AuthSession(
        user=user,
        refresh_jti=new_jti(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
        ip=ip,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
    )
    db.add(sess)
    db.flush()
    return sess


def logged_in_from(user_id: uuid.UUID, ip: str, since: datetime) -> bool:
    """Whether ``user_id`` started a session from address ``ip`` at or after ``since``.

    The login limiter's "known address" (docs/api.md, Rate limits). ``ip`` must be a valid
    address: Postgres casts it to ``inet``.
    """
    found = db.scalar(
        select(AuthSession.id)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.ip == ip,
            AuthSession.created_at >= since,
        )
        .limit(1)
    )
    return found is not None


def seen_login_source(
    user_id: uuid.UUID, ip: str | None, user_agent: str | None, since: datetime
) -> bool:
    """Whether ``user_id`` started a session from ``ip`` or with ``user_agent`` since ``since``.

    One query on the (user_id, created_at) index. A None ``ip`` or ``user_agent`` matches
    nothing; with both None the answer is True (nothing to call new).
    """
    agent = (user_agent or "")[:USER_AGENT_MAX] or None
    matches = []
    if ip is not None:
        matches.append(AuthSession.ip == ip)
    if agent is not None:
        matches.append(AuthSession.user_agent == agent)
    if not matches:
        return True
    found = db.scalar(
        select(AuthSession.id)
        .where(AuthSession.user_id == user_id, AuthSession.created_at >= since, or_(*matches))
        .limit(1)
    )
    return found is not None


def _parse_id(session_id: uuid.UUID | str) -> uuid.UUID | None:
    if isinstance(session_id, uuid.UUID):
        return session_id
    try:
        return uuid.UUID(str(session_id))
    except ValueError:
        return None


def session_state(session_id: uuid.UUID | str, now: datetime) -> SessionState | None:
    """The session's liveness, counting its user's active flag; None if unknown."""
    sid = _parse_id(session_id)
    if sid is None:
        return None
    row = db.execute(
        select(AuthSession.user_id, AuthSession.revoked_at, AuthSession.expires_at, User.is_active)
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == sid)
    ).one_or_none()
    if row is None:
        return None
    active = row.revoked_at is None and row.expires_at > now and bool(row.is_active)
    return SessionState(session_id=sid, user_id=row.user_id, active=active)


def rotate(session_id: str, presented_jti: str, now: datetime, ttl_seconds: int) -> AuthSession:
    """Swap the session's refresh jti for a new one.

    A jti that is not the current one was already used: the session is revoked
    (someone else holds a copy) and :class:`Unauthorized` is raised. The row is
    locked so two concurrent refreshes with one token cannot both succeed.
    """
    sid = _parse_id(session_id)
    sess = (
        db.scalars(
            select(AuthSession).where(AuthSession.id == sid).with_for_update(of=AuthSession)
        ).one_or_none()
        if sid
        else None
    )
    if sess is None or not sess.is_usable(now) or not sess.user.is_active:
        raise Unauthorized("Session expired or revoked; log in again.")
    if not secrets.compare_digest(sess.refresh_jti, presented_jti):
        sess.revoked_at = now
        sess.revoked_reason = "refresh_reuse"
        raise Unauthorized("Session expired or revoked; log in again.")
    sess.refresh_jti = new_jti()
    sess.rotation_count += 1
    sess.last_seen_at = now
    # Sliding expiry: an active session lives ttl from its last refresh.
    sess.expires_at = now + timedelta(seconds=ttl_seconds)
    return sess


def list_sessions(user_id: uuid.UUID, now: datetime) -> list[AuthSession]:
    """The user's live sessions, most recently used first."""
    return list(
        db.scalars(
            select(AuthSession)
            .where(AuthSession.user_id == user_id)
            .where(AuthSession.revoked_at.is_(None), AuthSession.expires_at > now)
            .order_by(AuthSession.last_seen_at.desc(), AuthSession.id)
        )
    )


def revoke(user_id: uuid.UUID, session_id: uuid.UUID | str, now: datetime, reason: str) -> None:
    """Revoke one of the user's sessions; another user's session is :class:`NotFound`."""
    sid = _parse_id(session_id)
    sess = db.get(AuthSession, sid) if sid else None
    if sess is None or sess.user_id != user_id:
        raise NotFound("No session with that id.")
    if sess.revoked_at is None:
        sess.revoked_at = now
        sess.revoked_reason = reason
    db.flush()


def revoke_all(
    user_id: uuid.UUID, now: datetime, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke every live session of the user except ``keep``; returns the ids revoked."""
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .returning(AuthSession.id)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return list(db.scalars(stmt))


def purge_stale(now: datetime, keep_days: int = 30) -> int:
    """Delete sessions expired or revoked more than ``keep_days`` ago; returns the count."""
    cutoff = now - timedelta(days=keep_days)
    expired = or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
    return purge_rows(AuthSession, expired)
