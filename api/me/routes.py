"""``/api/v1/me``: who am I, with roles and permissions."""

from __future__ import annotations

from flask.views import MethodView

from api.access import authenticated, current_user
from api.me import blp
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
