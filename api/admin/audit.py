"""The audit trail: every recorded action, for admins (``GET /api/v1/admin/audit``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import require_permission
from api.admin import blp
from api.errors import ErrorOut
from api.pagination import cursor_page
from api.people.activity_schemas import (
    ActivityListOut,
    AuditQuery,
    activity_filter,
    activity_view,
)
from models.people.activities import activity_page, user_id_for


@blp.route("/audit")
class AuditTrail(MethodView):
    # users:manage (admins): the trail holds every account's addresses and browsers.
    @require_permission("users:manage")
    @blp.doc(operationId="listAuditTrail")
    @blp.arguments(AuditQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ActivityListOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Everyone's recorded actions, newest first; filter by user, verb, object and time."""
        where = activity_filter(query)
        if "user" in query:
            actor_id = user_id_for(query["user"])
            if actor_id is None:  # no such username: nothing it did
                return {"rows": [], "next_cursor": None}
            where = dataclasses.replace(where, actor_id=actor_id)
        rows, next_cursor = cursor_page(
            lambda n: activity_page(where, n), query["limit"], lambda e: e.activity.id
        )
        return {"rows": [activity_view(e) for e in rows], "next_cursor": next_cursor}
