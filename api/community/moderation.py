"""Moderation (permission ``content:moderate``): the report queue, closing reports, and
hiding or restoring bots and comments. Every change is in the audit trail
(``moderation.*`` verbs, docs/community.md#moderation).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api import time_cursor as cursors
from api.access import current_user, require_permission
from api.auth.tokens import now_utc
from api.community import blp
from api.community.report_schemas import (
    HideIn,
    ModeratedOut,
    ModerationReportOut,
    ReportDismissIn,
    ReportOut,
    ReportQueueOut,
    ReportQueueQuery,
    ReportResolveIn,
    RestoreIn,
)
from api.errors import ErrorOut
from api.extensions import redis_client
from api.pagination import cursor_page
from api.people.activity import track
from models.community import moderation
from models.community.report_targets import target_summaries, usernames
from models.community.reports import (
    QueueFilter,
    close_report,
    get_report,
    open_report_counts,
    report_queue,
)
from models.community.tables import Report
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.leaderboards.preview_cache import forget_preview_body

MODERATE = "content:moderate"
REPORT_FIELDS = (*ReportOut._declared_fields, "resolved_at", "resolution")


def _cursor_of(report: Report) -> str:
    return cursors.encode(report.created_at, report.id)


def queue_views(reports: list[Report]) -> list[dict[str, Any]]:
    """The queue's body of each report: people by name, the target's summary."""
    targets = target_summaries(reports)
    counts = open_report_counts(reports)
    people = usernames({i for r in reports for i in (r.reporter_id, r.resolved_by) if i})

    def person(user_id: uuid.UUID | None) -> dict[str, Any] | None:
        if user_id is None or user_id not in people:
            return None
        return {"id": user_id, "username": people[user_id]}

    views = []
    for report in reports:
        key = (report.target_type, report.target_id)
        summary = targets.get(key)
        target = None
        if summary is not None:
            target = {**summary.__dict__, "open_reports": counts.get(key, 0)}
        views.append(
            {
                **{name: getattr(report, name) for name in REPORT_FIELDS},
                "reporter": person(report.reporter_id),
                "resolved_by": person(report.resolved_by),
                "target": target,
            }
        )
    return views


@blp.route("/moderation/reports")
class ModerationReports(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="listModerationReports")
    @blp.arguments(ReportQueueQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, ReportQueueOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The report queue by status (default open), oldest first, each with its target."""
        where = QueueFilter(
            status=query["status"],
            target_type=query.get("target_type"),
            after=cursors.decode(query.get("cursor")),
        )
        rows, next_cursor = cursor_page(
            lambda n: report_queue(where, n), query["limit"], _cursor_of
        )
        return {"items": queue_views(rows), "next_cursor": next_cursor}


def _hide_target(report: Report, moderator_id: uuid.UUID, now: datetime) -> bool:
    """Hide what ``report`` is about (a bot or comment); whether that changed anything."""
    if report.target_type == "user":
        message = "A user cannot be hidden; resolve without hide (an admin can disable them)."
        raise Invalid(message, {"json": {"hide": [message]}})
    try:
        state = moderation.hide(
            report.target_type, report.target_id, moderator_id, report.reason, now
        )
    except NotFound:
        raise Conflict("The reported object no longer exists; resolve without hide.") from None
    if state.changed:
        _track_moderated("hidden", state, {"reason": report.reason, "report_id": str(report.id)})
    return state.changed


def _track_moderated(what: str, state: moderation.Moderated, data: dict[str, Any]) -> None:
    track(
        f"moderation.{state.object_type}_{what}",
        object_type=state.object_type,
        object_id=state.object_id,
        data={"owner_id": str(state.owner_id), "bot_id": str(state.bot_id), **data},
    )


def _close(report_id: uuid.UUID, status: str, data: dict[str, Any]) -> dict[str, Any]:
    moderator, now = current_user(), now_utc()
    report = get_report(report_id)
    hidden = False
    if data.get("hide"):
        if report.status != "open":  # nothing may change on a closed report
            raise Conflict(f"This report is already {report.status}.")
        hidden = _hide_target(report, moderator.id, now)
    report = close_report(report_id, moderator.id, status, data["note"], now)
    db.commit()
    if hidden and report.target_type == "bot":
        forget_preview_body(redis_client())
    verb = "moderation.report_resolved" if status == "resolved" else "moderation.report_dismissed"
    details: dict[str, Any] = {
        "target_type": report.target_type,
        "target_id": str(report.target_id),
    }
    if status == "resolved":
        details["hid_target"] = hidden
    track(verb, object_type="report", object_id=report.id, data=details)
    return queue_views([report])[0]


@blp.route("/moderation/reports/<uuid:report_id>/resolve")
class ModerationReportResolve(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="resolveReport")
    @blp.arguments(ReportResolveIn())
    @blp.response(200, ModerationReportOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such report")
    @blp.alt_response(409, schema=ErrorOut, description="Already resolved or dismissed")
    @blp.alt_response(422, schema=ErrorOut, description="Invalid fields; hide on a user report")
    def post(self, data: dict[str, Any], report_id: uuid.UUID) -> dict[str, Any]:
        """Resolve an open report with a note; ``hide`` also hides its bot or comment."""
        return _close(report_id, "resolved", data)


@blp.route("/moderation/reports/<uuid:report_id>/dismiss")
class ModerationReportDismiss(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="dismissReport")
    @blp.arguments(ReportDismissIn())
    @blp.response(200, ModerationReportOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such report")
    @blp.alt_response(409, schema=ErrorOut, description="Already resolved or dismissed")
    def post(self, data: dict[str, Any], report_id: uuid.UUID) -> dict[str, Any]:
        """Dismiss an open report (nothing wrong found) with a note."""
        return _close(report_id, "dismissed", data)


def _moderated_view(state: moderation.Moderated) -> dict[str, Any]:
    return {**state.__dict__, "hidden": state.hidden_at is not None}


def _hide(object_type: str, object_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    moderator = current_user()
    state = moderation.hide(object_type, object_id, moderator.id, data["reason"], now_utc())
    db.commit()
    if state.changed:
        _after_hiding(state)
        _track_moderated("hidden", state, {"reason": data["reason"]})
    return _moderated_view(state)


def _after_hiding(state: moderation.Moderated) -> None:
    """A hidden bot leaves the cached public leaderboard preview now, not within a minute."""
    if state.object_type == "bot":
        forget_preview_body(redis_client())


def _restore(object_type: str, object_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    state = moderation.restore(object_type, object_id)
    db.commit()
    if state.changed:
        _track_moderated("restored", state, {"reason": data["reason"]})
    return _moderated_view(state)


@blp.route("/moderation/bots/<uuid:bot_id>/hide")
class ModerationBotHide(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="hideBot")
    @blp.arguments(HideIn())
    @blp.response(200, ModeratedOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such bot")
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """Hide a bot from everyone but its owner (again: no change); the owner is told."""
        return _hide("bot", bot_id, data)


@blp.route("/moderation/bots/<uuid:bot_id>/restore")
class ModerationBotRestore(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="restoreBot")
    @blp.arguments(RestoreIn())
    @blp.response(200, ModeratedOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such bot")
    def post(self, data: dict[str, Any], bot_id: uuid.UUID) -> dict[str, Any]:
        """Show a hidden bot again (a shown one: no change)."""
        return _restore("bot", bot_id, data)


@blp.route("/moderation/comments/<uuid:comment_id>/hide")
class ModerationCommentHide(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="hideComment")
    @blp.arguments(HideIn())
    @blp.response(200, ModeratedOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such comment")
    def post(self, data: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """Hide a comment from everyone but its author (again: no change); the author is told."""
        return _hide("comment", comment_id, data)


@blp.route("/moderation/comments/<uuid:comment_id>/restore")
class ModerationCommentRestore(MethodView):
    @require_permission(MODERATE)
    @blp.doc(operationId="restoreComment")
    @blp.arguments(RestoreIn())
    @blp.response(200, ModeratedOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    @blp.alt_response(404, schema=ErrorOut, description="No such comment")
    def post(self, data: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """Show a hidden comment again (a shown one: no change)."""
        return _restore("comment", comment_id, data)
