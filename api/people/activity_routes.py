"""My activity: what I did, from where (``GET /api/v1/me/activity``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.pagination import cursor_page
from api.people import blp
from api.people.activity_schemas import (
    ActivityListOut,
    ActivityQuery,
    activity_filter,
    activity_view,
)
from models.people.activities import activity_page


@blp.route("/activity")
class MyActivity(MethodView):
    @authenticated
    @blp.doc(operationId="listMyActivity")
    @blp.arguments(ActivityQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ActivityListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """My own actions (with address and browser), newest first, paged by cursor."""
        where = activity_filter(query, actor_id=current_user().id)
        rows, next_cursor = cursor_page(
            lambda n: activity_page(where, n), query["limit"], lambda e: e.activity.id
        )
        return {"rows": [activity_view(e) for e in rows], "next_cursor": next_cursor}
