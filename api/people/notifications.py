"""My in-app notifications: list, unread count, mark one or all read."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.errors import ErrorOut
from api.pagination import cursor_page
from api.people import blp
from api.people.notification_schemas import (
    MarkedReadOut,
    NotificationListOut,
    NotificationOut,
    NotificationQuery,
    UnreadCountOut,
)
from models.db import session as db
from models.people import notifications
from models.people.tables import Notification

NOT_FOUND = "No notification with that id."


@blp.route("/notifications")
class Notifications(MethodView):
    @authenticated
    @blp.doc(operationId="listNotifications")
    @blp.arguments(NotificationQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, NotificationListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """My in-app notifications, newest first, paged by cursor (the last id seen)."""
        user_id = current_user().id
        rows, next_cursor = cursor_page(
            lambda n: notifications.list_notifications(
                user_id, unread=query.get("unread"), before=query.get("cursor"), limit=n
            ),
            query["limit"],
            lambda row: row.id,
        )
        return {"rows": rows, "next_cursor": next_cursor}


@blp.route("/notifications/unread-count")
class UnreadNotificationCount(MethodView):
    @authenticated
    @blp.doc(operationId="getUnreadNotificationCount")
    @blp.response(200, UnreadCountOut)
    def get(self) -> dict[str, int]:
        """How many of my in-app notifications are unread."""
        return {"unread": notifications.unread_count(current_user().id)}


@blp.route("/notifications/<int:notification_id>/read")
class NotificationRead(MethodView):
    @authenticated
    @blp.doc(operationId="markNotificationRead")
    @blp.response(200, NotificationOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def post(self, notification_id: int) -> Notification:
        """Mark one of my notifications read (again: no change)."""
        note = notifications.mark_read(current_user().id, notification_id, now_utc())
        db.commit()
        return note


@blp.route("/notifications/read-all")
class NotificationsReadAll(MethodView):
    @authenticated
    @blp.doc(operationId="markAllNotificationsRead")
    @blp.response(200, MarkedReadOut)
    def post(self) -> dict[str, int]:
        """Mark all my unread notifications read; says how many."""
        marked = notifications.mark_all_read(current_user().id, now_utc())
        db.commit()
        return {"marked": marked}
