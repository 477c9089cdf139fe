"""Profiles: mine (`/api/v1/me`) and other people's (`/api/v1/users/{username}`)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user, optional_viewer_id, public
from api.bots.cards import bot_cards
from api.errors import ErrorOut
from api.people import blp, users_blp
from api.people.activity import track
from api.people.profile_schemas import ProfilePatch, PublicProfileOut
from api.schemas import UserOut
from models.bots.bots import public_bots_of
from models.community.follows import follow_counts
from models.db import session as db
from models.identity.tables import User
from models.people.profiles import update_profile, visible_profile


@blp.route("")
class Me(MethodView):
    @authenticated
    @blp.doc(operationId="getMe")
    @blp.response(200, UserOut)
    def get(self) -> User:
        """My profile, roles and permissions."""
        return current_user()

    @authenticated
    @blp.doc(operationId="updateMe")
    @blp.arguments(ProfilePatch())
    @blp.response(200, UserOut)
    @blp.alt_response(422, schema=ErrorOut, description="Invalid or unknown fields")
    def patch(self, data: dict[str, Any]) -> User:
        """Change some of my profile's fields (not the username; the email has its own flow)."""
        user = current_user()
        changed = update_profile(user, data)
        if changed:
            track(
                "profile.updated", object_type="user", object_id=user.id, data={"fields": changed}
            )
        db.commit()
        return user


@users_blp.route("/<string:username>")
class UserProfile(MethodView):
    @public
    @users_blp.doc(operationId="getUserProfile", security=[])
    @users_blp.response(200, PublicProfileOut)
    @users_blp.alt_response(404, schema=ErrorOut, description="No such (visible) user")
    def get(self, username: str) -> dict[str, Any]:
        """Someone's public profile (a private one only to its owner, who sends a token)."""
        viewer_id = optional_viewer_id()
        user = visible_profile(username, viewer_id)
        bots = public_bots_of(user.id)
        followers, following = follow_counts(user.id)
        return {
            "username": user.username,
            "display_name": user.display_name,
            "bio": user.bio,
            "avatar_url": user.avatar_url,
            "created_at": user.created_at,
            # Public bots with a live run.
            "public_bots": bot_cards(bots, viewer_id),
            "counts": {"public_bots": len(bots), "followers": followers, "following": following},
        }
