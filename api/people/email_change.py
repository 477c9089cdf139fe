"""Email change: ask (password required; a link goes to the new address), then confirm."""

from __future__ import annotations

from typing import Any

import structlog
from flask.views import MethodView
from flask_smorest import abort
from redis.exceptions import RedisError

from api.access import authenticated, current_user_with_password, public
from api.auth.schemas import AcceptedOut
from api.auth.tokens import now_utc
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.people import blp
from api.people.activity import track
from api.people.profile_schemas import EmailChangeIn, EmailConfirmIn, EmailOut
from api.ratelimit import caller_key, failed_only, limiter, setting
from models.db import session as db
from models.errors import Conflict
from models.identity import names as naming
from models.people.email_changes import (
    TAKEN,
    confirm_email_change,
    describe_ttl,
    email_taken,
    request_email_change,
)
from models.people.notifications import notify
from workers.enqueue import enqueue_email_change_link, enqueue_email_changed_notice

log = structlog.get_logger(__name__)


def _domain(email: str) -> str:
    return email.rpartition("@")[2]


@blp.route("/email")
class EmailChange(MethodView):
    @limiter.limit(
        setting("rate_limit_login_account"),
        key_func=caller_key,
        scope="email-change",
        deduct_when=failed_only,
    )
    @authenticated
    @blp.doc(operationId="requestEmailChange")
    @blp.arguments(EmailChangeIn())
    @blp.response(202, AcceptedOut)
    @blp.alt_response(409, schema=ErrorOut, description="Another account uses that email")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid email or wrong password")
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Mail a confirmation link to a new address; my email changes when it is opened."""
        user = current_user_with_password(data["password"])
        new_email = naming.display_email(data["new_email"])
        if naming.email_key(new_email) == user.email_key:
            message = "That is already your email."
            abort(422, message=message, errors={"json": {"new_email": [message]}})
        if email_taken(new_email, user.id):
            raise Conflict(TAKEN)
        ttl = settings().email_change_ttl
        pending = request_email_change(user, new_email, now_utc(), ttl)  # older links die now
        domain = _domain(new_email)
        notify(user.id, "account.email_change_requested", {"new_email_domain": domain})
        track(
            "email.change_requested",
            object_type="user",
            object_id=user.id,
            data={"new_email_domain": domain},
        )
        db.commit()
        enqueue_email_change_link(redis_client(), str(pending.id))
        return {
            "message": f"A confirmation link is on its way to {new_email}. It works once, "
            f"within {describe_ttl(ttl)}; until then your email stays {user.email}."
        }


@blp.route("/email/confirm")
class EmailConfirm(MethodView):
    @limiter.limit(setting("rate_limit_reset_ip"), scope="email-confirm-ip")
    @public
    @blp.doc(operationId="confirmEmailChange", security=[])
    @blp.arguments(EmailConfirmIn())
    @blp.response(200, EmailOut)
    @blp.alt_response(400, schema=ErrorOut, description="Invalid, expired or used token")
    @blp.alt_response(409, schema=ErrorOut, description="Another account took that email since")
    @blp.alt_response(429, schema=ErrorOut, description="Too many requests")
    def post(self, data: dict[str, Any]) -> dict[str, str]:
        """Confirm an email change with the token from the link; the old address is told."""
        changed = confirm_email_change(data["token"], now_utc())
        user = changed.user
        notify(user.id, "account.email_changed", {"new_email_domain": _domain(changed.new_email)})
        track("email.changed", actor_id=user.id, object_type="user", object_id=user.id)
        db.commit()
        try:
            enqueue_email_changed_notice(redis_client(), str(user.id), changed.old_email)
        except RedisError as exc:  # the change is committed; an outage only loses the notice
            log.warning("email_changed_notice_not_queued", error_type=type(exc).__name__)
        return {"email": changed.new_email}
