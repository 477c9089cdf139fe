"""Profiles: mine (`/api/v1/me`) and other people's (`/api/v1/users/{username}`)."""

from __future__ import annotations

from flask.views import MethodView

from api.access import authenticated, current_user
from api.people import blp
from api.schemas import UserOut
from models.identity.tables import User


@blp.route("")
class Me(MethodView):
    @authenticated
    @blp.doc(operationId="getMe")
    @blp.response(200, UserOut)
    def get(self) -> User:
        """My profile, roles and permissions."""
        return current_user()
