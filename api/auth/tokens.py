"""Issuing tokens, checking their session, and rendering JWT failures in the one error shape.

Every token carries ``sid`` (its session). Postgres decides whether a session is
alive; Redis caches that answer briefly (``auth:session:<sid>``) so a request
usually costs no query. A revocation writes "revoked" to Redis and the row to
Postgres, so flushing Redis loses nothing: the next check reads Postgres.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from flask import Flask, Response
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token
from redis.exceptions import RedisError

from api.errors import error_response
from api.extensions import redis_client, settings
from models.identity.sessions import session_state
from models.identity.tables import AuthSession

log = structlog.get_logger(__name__)

ACTIVE_TTL_SECONDS = 30
_ACTIVE, _REVOKED = "active", "revoked"


def _cache_key(session_id: uuid.UUID | str) -> str:
    return f"auth:session:{session_id}"


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def issue_tokens(sess: AuthSession, fresh: bool) -> dict[str, Any]:
    """An access/refresh pair for ``sess``; the refresh token's jti is the session's current one."""
    identity = str(sess.user_id)
    claims = {"sid": str(sess.id)}
    # Roles ride along only to pick the caller's rate limit; permissions are always read fresh.
    access = create_access_token(
        identity=identity,
        fresh=fresh,
        additional_claims={**claims, "roles": sess.user.role_names},
    )
    refresh = create_refresh_token(
        identity=identity,
        additional_claims={**claims, "jti": sess.refresh_jti},
        expires_delta=max(sess.expires_at - now_utc(), timedelta(seconds=1)),
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": settings().access_token_ttl,
    }


def mark_revoked(session_ids: Iterable[uuid.UUID]) -> None:
    """Tell the cache these sessions are dead (best effort; Postgres already says so)."""
    ids = list(session_ids)
    if not ids:
        return
    try:
        pipe = redis_client().pipeline()
        for sid in ids:
            pipe.set(_cache_key(sid), _REVOKED, ex=settings().refresh_token_ttl)
        pipe.execute()
    except RedisError as exc:
        log.warning("session_cache_write_failed", error_type=type(exc).__name__)


def is_session_revoked(payload: dict[str, Any]) -> bool:
    """Whether the token's session is dead: cached answer first, Postgres on a miss."""
    sid = payload.get("sid")
    if not isinstance(sid, str):
        return True
    cache = redis_client()
    try:
        cached = cache.get(_cache_key(sid))
    except RedisError:
        cached = None
    if cached is not None:
        return bool(cached == _REVOKED.encode())
    state = session_state(sid, now_utc())
    alive = state is not None and state.active and str(state.user_id) == payload.get("sub")
    with contextlib.suppress(RedisError):
        cache.set(_cache_key(sid), _ACTIVE if alive else _REVOKED, ex=ACTIVE_TTL_SECONDS)
    return not alive


def _unauthorized(message: str) -> Response:
    return error_response(401, message)


def init_jwt(app: Flask, jwt: JWTManager) -> None:
    """Configure flask-jwt-extended from settings and route its errors to our shape."""
    s = app.extensions["botyard.settings"]
    app.config.update(
        JWT_SECRET_KEY=s.jwt_secret_key,
        JWT_ALGORITHM=s.jwt_algorithm,
        JWT_DECODE_ALGORITHMS=[s.jwt_algorithm],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=s.access_token_ttl),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=s.refresh_token_ttl),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ENCODE_ISSUER="botyard",
        JWT_DECODE_ISSUER="botyard",
        JWT_ERROR_MESSAGE_KEY="message",
    )
    jwt.init_app(app)

    @jwt.token_in_blocklist_loader
    def _revoked(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return is_session_revoked(payload)

    @jwt.unauthorized_loader
    def _missing(_reason: str) -> Response:
        return _unauthorized("Missing bearer token: send 'Authorization: Bearer <token>'.")

    @jwt.invalid_token_loader
    def _invalid(reason: str) -> Response:
        if "refresh" in reason.lower():
            return _unauthorized("Wrong token type: this endpoint needs the other kind of token.")
        return _unauthorized("Invalid token.")

    @jwt.expired_token_loader
    def _expired(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return _unauthorized("Token has expired.")

    @jwt.revoked_token_loader
    def _revoked_response(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return _unauthorized("Session has been revoked; log in again.")

    @jwt.needs_fresh_token_loader
    def _needs_fresh(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return _unauthorized("This needs a fresh login, not a refreshed token.")

    @jwt.user_lookup_error_loader
    def _lookup_failed(_header: dict[str, Any], _payload: dict[str, Any]) -> Response:
        return _unauthorized("This account is disabled or no longer exists.")
