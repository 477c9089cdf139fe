"""Admin views over accounts; every one needs a ``users:*`` permission."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import require_permission
from api.admin import blp
from api.admin.schemas import RolesIn, UserPageOut, UserSearchQuery
from api.auth.tokens import mark_revoked, now_utc
from api.errors import ErrorOut
from api.pagination import paged
from api.people.activity import track
from api.schemas import UserOut
from models.db import session as db
from models.identity import sessions as auth_sessions
from models.identity.tables import User
from models.identity.users import disable_user, enable_user, get_user, search_users, set_roles


@blp.route("/users")
class AdminUsers(MethodView):
    @require_permission("users:read")
    @blp.doc(operationId="searchUsers")
    @blp.arguments(UserSearchQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, UserPageOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Search accounts, newest first (page_size at most 100)."""
        return paged(search_users(query.get("q")), query)


@blp.route("/users/<uuid:user_id>/roles")
class AdminUserRoles(MethodView):
    @require_permission("users:manage")
    @blp.doc(operationId="setUserRoles")
    @blp.arguments(RolesIn())
    @blp.response(200, UserOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such user")
    @blp.alt_response(409, schema=ErrorOut, description="Would leave no active admin")
    def put(self, data: dict[str, Any], user_id: uuid.UUID) -> User:
        """Replace a user's roles."""
        user = get_user(user_id)
        before = sorted(user.role_names)
        set_roles(user, data["roles"])
        db.commit()
        after = sorted(user.role_names)
        if after != before:
            track(
                "admin.roles_changed",
                object_type="user",
                object_id=user.id,
                data={"before": before, "after": after},
            )
        return user


@blp.route("/users/<uuid:user_id>/disable")
class AdminUserDisable(MethodView):
    @require_permission("users:manage")
    @blp.doc(operationId="disableUser")
    @blp.response(200, UserOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such user")
    @blp.alt_response(409, schema=ErrorOut, description="Would leave no active admin")
    def post(self, user_id: uuid.UUID) -> User:
        """Disable an account and revoke all its sessions."""
        now = now_utc()
        user = disable_user(get_user(user_id), now)
        revoked = auth_sessions.revoke_all(user.id, now, reason="account_disabled")
        db.commit()
        mark_revoked(revoked)
        track(
            "admin.user_disabled",
            object_type="user",
            object_id=user.id,
            data={"sessions_revoked": len(revoked)},
        )
        return user


@blp.route("/users/<uuid:user_id>/enable")
class AdminUserEnable(MethodView):
    @require_permission("users:manage")
    @blp.doc(operationId="enableUser")
    @blp.response(200, UserOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such user")
    def post(self, user_id: uuid.UUID) -> User:
        """Let a disabled account log in again (old sessions stay revoked)."""
        user = enable_user(get_user(user_id))
        db.commit()
        track("admin.user_enabled", object_type="user", object_id=user.id)
        return user
