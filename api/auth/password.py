"""Password reset (forgot, reset) and password change."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from api.access import (
    current_session_id,
    current_user_with_password,
    fresh_login_required,
    public,
)
from api.auth import blp
from api.auth.schemas import AcceptedOut, ForgotIn, PasswordChangeIn, ResetIn
from api.auth.tokens import mark_revoked, now_utc
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.people.activity import track
from api.ratelimit import body_field_key, caller_key, failed_only, limiter, setting
from models.db import session as db
from models.identity import sessions as auth_sessions
from models.identity.password_resets import InvalidResetToken, redeem_reset_token
from models.identity.tables import User
from models.identity.users import set_password
from models.people.notifications import notify
from workers.enqueue import enqueue_password_reset


def _notify_password_changed(user: User, via: str) -> None:
    """Tell the owner (a security event: always by email too), in the change's transaction."""
    data = {"at": now_utc().isoformat(), "ip": request.remote_addr, "via": via}
    notify(user.id, "account.password_changed", data)


@blp.route("/password/forgot")
class PasswordForgot(MethodView):
    @limiter.limit(setting("rate_limit_reset_ip"), scope="reset-ip")
    @limiter.limit(
        setting("rate_limit_reset_email"), key_func=body_field_key("email"), scope="reset-email"
    )
    @public
    @blp.doc(operationId="forgotPassword", security=[])
    @blp.arguments(ForgotIn())
    @blp.response(202, AcceptedOut)
    @blp.alt_response(429, schema=ErrorOut, description="Too many requests")
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Email a reset link if the account exists (the answer is the same either way)."""
        # No lookup here: the job does it, so both cases cost the same enqueue.
        enqueue_password_reset(
            redis_client(), data["email"], request.remote_addr, request.headers.get("User-Agent")
        )
        minutes = settings().password_reset_ttl // 60
        return {
            "message": "If an account uses that email, a link to reset its password is on its "
            f"way. It works once, within {minutes} minutes."
        }


@blp.route("/password/reset")
class PasswordReset(MethodView):
    @limiter.limit(setting("rate_limit_reset_ip"), scope="reset-ip")
    @public
    @blp.doc(operationId="resetPassword", security=[])
    @blp.arguments(ResetIn())
    @blp.response(204)
    @blp.alt_response(400, schema=ErrorOut, description="Invalid, expired or used token")
    @blp.alt_response(429, schema=ErrorOut, description="Too many requests")
    def post(self, data: dict[str, Any]) -> None:
        """Set a new password with a reset token; every session of the account is logged out."""
        now = now_utc()
        user = db.get(User, redeem_reset_token(data["token"], now))
        if user is None or not user.is_active:
            raise InvalidResetToken()
        set_password(user, data["new_password"])
        revoked = auth_sessions.revoke_all(user.id, now, reason="password_reset")
        _notify_password_changed(user, "reset")
        db.commit()
        mark_revoked(revoked)
        track("password.reset", object_type="user", object_id=user.id, actor_id=user.id)


@blp.route("/password/change")
class PasswordChange(MethodView):
    @limiter.limit(
        setting("rate_limit_login_account"),
        key_func=caller_key,
        scope="password-change",
        deduct_when=failed_only,
    )
    @fresh_login_required
    @blp.doc(operationId="changePassword")
    @blp.arguments(PasswordChangeIn())
    @blp.response(204)
    @blp.alt_response(401, schema=ErrorOut, description="Needs a token from a fresh login")
    @blp.alt_response(422, schema=ErrorOut, description="Wrong current password")
    def post(self, data: dict[str, Any]) -> None:
        """Change my password (needs a login-fresh token); my other sessions are logged out."""
        user = current_user_with_password(data["current_password"], "current_password")
        set_password(user, data["new_password"])
        revoked = auth_sessions.revoke_all(
            user.id, now_utc(), reason="password_changed", keep=current_session_id()
        )
        _notify_password_changed(user, "change")
        db.commit()
        mark_revoked(revoked)
        track("password.changed", object_type="user", object_id=user.id)
