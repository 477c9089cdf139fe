"""``POST /api/v1/reports``: a user reports a bot, a comment or a user to the moderators."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from api.access import authenticated, current_user
from api.community import blp
from api.community.limits import action_limit
from api.community.report_schemas import ReportIn, ReportOut
from api.errors import ErrorOut
from api.people.activity import track
from models.community.reports import file_report
from models.community.tables import Report
from models.db import session as db


@blp.route("/reports")
class Reports(MethodView):
    @authenticated
    @action_limit("report")
    @blp.doc(operationId="createReport")
    @blp.arguments(ReportIn())
    @blp.response(201, ReportOut)
    @blp.alt_response(404, schema=ErrorOut, description="No such (visible) bot, comment or user")
    @blp.alt_response(409, schema=ErrorOut, description="My report of it is still open")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid fields, or my own object")
    @blp.alt_response(429, schema=ErrorOut, description="Too many reports")
    def post(self, data: dict[str, Any]) -> Report:
        """Report a bot, comment or user I can see (one open report of each at a time)."""
        user = current_user()
        report = file_report(
            user.id, data["target_type"], data["target_id"], data["reason"], data["details"]
        )
        db.commit()
        track(
            "report.created",
            object_type="report",
            object_id=report.id,
            data={
                "target_type": report.target_type,
                "target_id": str(report.target_id),
                "reason": report.reason,
            },
        )
        return report
