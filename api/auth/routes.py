"""Auth views: register, login, refresh, logout, sessions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import abort, request
from flask.views import MethodView
from flask_jwt_extended import get_jwt
from sqlalchemy.orm.attributes import get_history

from api.access import (
    authenticated,
    current_session_id,
    current_user,
    public,
    refresh_token_required,
)
from api.auth import blp
from api.auth.schemas import LoginIn, RegisterIn, RevokedOut, SessionOut, TokensOut
from api.auth.tokens import issue_tokens, mark_revoked, now_utc
from api.errors import ErrorOut
from api.extensions import settings
from api.people.activity import track
from api.ratelimit import (
    body_field_key,
    from_known_address,
    limiter,
    login_account_ip_key,
    login_account_key,
    refund_unless_failed,
    setting,
)
from api.schemas import UserOut
from models.db import session as db
from models.errors import Unauthorized
from models.identity import sessions as auth_sessions
from models.identity.tables import AuthSession, User
from models.identity.users import authenticate, create_user, find_by_login
from models.people.lifecycle import cancel_deletion
from models.people.notifications import notify

BAD_CREDENTIALS = "Wrong login or password."


def _session_out(sess: AuthSession, current: uuid.UUID | None) -> dict[str, Any]:
    return {
        "id": sess.id,
        "created_at": sess.created_at,
        "last_seen_at": sess.last_seen_at,
        "expires_at": sess.expires_at,
        "ip": str(sess.ip) if sess.ip is not None else None,
        "user_agent": sess.user_agent,
        "current": sess.id == current,
    }


def _notify_new_login(user: User, now: datetime) -> None:
    """Notify ``account.new_login`` when neither this address nor this device is known.

    Known: a session of the account started from it within ``NEW_LOGIN_LOOKBACK_DAYS``.
    Never on the account's first login (``last_login_at`` was empty before this one).
    Runs before the new session exists, in the login's transaction.
    """
    previous = get_history(user, "last_login_at").deleted
    if not previous or previous[0] is None:
        return
    ip, agent = request.remote_addr, request.user_agent.string or None
    since = now - timedelta(days=settings().new_login_lookback_days)
    if auth_sessions.seen_login_source(user.id, ip, agent, since):
        return
    notify(user.id, "account.new_login", {"ip": ip, "user_agent": agent, "at": now.isoformat()})


@blp.route("/register")
class Register(MethodView):
    @limiter.limit(setting("rate_limit_register_ip"), scope="register-ip")
    @limiter.limit(
        setting("rate_limit_register_ip"), key_func=body_field_key("email"), scope="register-email"
    )
    @public
    @blp.doc(operationId="register", security=[])
    @blp.arguments(RegisterIn())
    @blp.response(201, UserOut)
    @blp.alt_response(409, schema=ErrorOut, description="Email or username taken")
    @blp.alt_response(429, schema=ErrorOut, description="Too many attempts")
    def post(self, data: dict[str, Any]) -> User:
        """Create an account with the `user` role."""
        user = create_user(data["email"], data["username"], data["password"])
        db.commit()
        track("auth.registered", object_type="user", object_id=user.id, actor_id=user.id)
        return user


@blp.route("/login")
class Login(MethodView):
    # Policy and reasons: docs/api.md, "Rate limits".
    @limiter.limit(setting("rate_limit_login_ip"), scope="login-ip")
    # The account budgets count every attempt up front and refund what did not fail
    # (refund_unless_failed below): deduct_when would let a concurrent burst through.
    @limiter.limit(
        setting("rate_limit_login_account_ip"),
        key_func=login_account_ip_key,
        scope="login-account-ip",
    )
    @limiter.limit(
        setting("rate_limit_login_account"),
        key_func=login_account_key,
        scope="login-account",
        exempt_when=from_known_address,
    )
    @public
    @blp.doc(operationId="login", security=[])
    @blp.arguments(LoginIn())
    @blp.response(200, TokensOut)
    @blp.alt_response(401, schema=ErrorOut, description="Wrong login or password")
    @blp.alt_response(429, schema=ErrorOut, description="Too many attempts")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Exchange credentials for an access token, a refresh token and a new session."""
        now = now_utc()
        user = authenticate(data["login"], data["password"], now)
        if user is None:
            # The account the login names, if any; never the typed login (a password, maybe).
            named = find_by_login(data["login"])
            track(
                "auth.login_failed",
                object_type="user" if named else None,
                object_id=named.id if named else None,
                actor_id=named.id if named else None,
            )
            abort(401, description=BAD_CREDENTIALS)
        # Logging in during the deletion grace period cancels it (docs/accounts.md).
        deletion_cancelled = cancel_deletion(user, now)
        if deletion_cancelled:
            track(
                "account.deletion_cancelled",
                object_type="user",
                object_id=user.id,
                actor_id=user.id,
            )
        _notify_new_login(user, now)
        sess = auth_sessions.start_session(
            user,
            now,
            settings().refresh_token_ttl,
            ip=request.remote_addr,
            user_agent=request.user_agent.string,
        )
        db.commit()
        track("auth.login", object_type="session", object_id=sess.id, actor_id=user.id)
        session = _session_out(sess, sess.id)
        tokens = issue_tokens(sess, fresh=True)
        return {**tokens, "session": session, "deletion_cancelled": deletion_cancelled}


@blp.after_request
def _refund_login_budget(response: Any) -> Any:
    if request.endpoint == "auth.Login":
        return refund_unless_failed(response)
    return response


@blp.route("/refresh")
class Refresh(MethodView):
    @refresh_token_required
    @blp.doc(operationId="refreshTokens")
    @blp.response(200, TokensOut)
    @blp.alt_response(401, schema=ErrorOut, description="Refresh token invalid, reused or revoked")
    def post(self) -> dict[str, Any]:
        """Rotate the refresh token (send it as the bearer token); reuse revokes the session."""
        claims = get_jwt()
        now = now_utc()
        try:
            sess = auth_sessions.rotate(
                claims["sid"], claims["jti"], now, settings().refresh_token_ttl
            )
        except Unauthorized:
            db.commit()  # keep the revocation that reuse detection may have made
            mark_revoked([uuid.UUID(claims["sid"])])
            raise
        db.commit()
        return {**issue_tokens(sess, fresh=False), "session": _session_out(sess, sess.id)}


@blp.route("/logout")
class Logout(MethodView):
    @authenticated
    @blp.doc(operationId="logout")
    @blp.response(204)
    def post(self) -> None:
        """Revoke the current session and every token issued for it."""
        sid = current_session_id()
        auth_sessions.revoke(current_user().id, sid, now_utc(), reason="logout")
        db.commit()
        mark_revoked([sid])
        track("auth.logout", object_type="session", object_id=sid)


@blp.route("/sessions")
class Sessions(MethodView):
    @authenticated
    @blp.doc(operationId="listSessions")
    @blp.response(200, SessionOut(many=True))
    def get(self) -> list[dict[str, Any]]:
        """List my live sessions, the current one flagged."""
        current = current_session_id()
        rows = auth_sessions.list_sessions(current_user().id, now_utc())
        return [_session_out(s, current) for s in rows]

    @authenticated
    @blp.doc(operationId="revokeOtherSessions")
    @blp.response(200, RevokedOut)
    def delete(self) -> dict[str, int]:
        """Revoke all my sessions except the current one."""
        ids = auth_sessions.revoke_all(
            current_user().id, now_utc(), reason="revoked_by_user", keep=current_session_id()
        )
        db.commit()
        mark_revoked(ids)
        track("session.revoked", data={"scope": "others", "count": len(ids)})
        return {"revoked": len(ids)}


@blp.route("/sessions/<uuid:session_id>")
class SessionById(MethodView):
    @authenticated
    @blp.doc(operationId="revokeSession")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description="No such session of mine")
    def delete(self, session_id: uuid.UUID) -> None:
        """Revoke one of my sessions (the current one too: that is a logout)."""
        auth_sessions.revoke(current_user().id, session_id, now_utc(), reason="revoked_by_user")
        db.commit()
        mark_revoked([session_id])
        track("session.revoked", object_type="session", object_id=session_id, data={"scope": "one"})
