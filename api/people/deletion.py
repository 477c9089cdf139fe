"""Deleting my account: ``DELETE /api/v1/me`` (policy: docs/accounts.md, Export and deletion)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user_with_password
from api.auth.tokens import mark_revoked, now_utc
from api.errors import ErrorOut
from api.extensions import settings
from api.people import blp
from api.people.activity import track
from api.people.lifecycle_schemas import AccountDeletionIn, AccountDeletionOut
from api.ratelimit import caller_key, failed_only, limiter, setting
from models.db import session as db
from models.people.lifecycle import schedule_deletion


@blp.route("")
class AccountDeletion(MethodView):
    @limiter.limit(
        setting("rate_limit_login_account"),
        key_func=caller_key,
        scope="account-delete",
        deduct_when=failed_only,
    )
    @authenticated
    @blp.doc(operationId="deleteAccount")
    @blp.arguments(AccountDeletionIn())
    @blp.response(202, AccountDeletionOut)
    @blp.alt_response(409, schema=ErrorOut, description="The last active admin")
    @blp.alt_response(422, schema=ErrorOut, description="Wrong password")
    def delete(self, data: dict[str, Any]) -> dict[str, Any]:
        """Delete my account: deactivated and logged out now, erased after the grace period."""
        user = current_user_with_password(data["password"])
        now = now_utc()
        scheduled = schedule_deletion(user, now, settings().account_deletion_grace_days)
        due = scheduled.due_at
        track(
            "account.deletion_requested",
            object_type="user",
            object_id=user.id,
            data={"due_at": due.isoformat()},
            actor_id=user.id,
        )
        db.commit()
        mark_revoked(scheduled.revoked)
        return {
            "deletion_requested_at": now,
            "deletion_due_at": due,
            "message": "Your account is deactivated and every session is logged out. It will be "
            f"erased on {due:%Y-%m-%d %H:%M} UTC; log in before then to cancel.",
        }
