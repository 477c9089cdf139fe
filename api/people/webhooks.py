"""My webhooks (`/api/v1/me/webhooks`): create (secret shown once), change, delete, ping,
and every delivery attempt. Anyone else's webhook is a 404. See docs/webhooks.md."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import abort

from api.access import authenticated, current_user
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.pagination import cursor_page, paged
from api.people import blp
from api.people.webhook_schemas import (
    WebhookAttemptQuery,
    WebhookAttemptsOut,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
    WebhookPageOut,
    WebhookPatch,
    WebhookPingOut,
)
from api.schemas import PageQuery
from models.db import session as db
from models.people.tables import Webhook
from models.people.webhooks import (
    attempts_page,
    create_webhook,
    delete_webhook,
    get_owned_webhook,
    update_webhook,
    webhooks_of,
)
from workers.enqueue import WEBHOOK_PING_INTERVAL_S, enqueue_webhook_ping

NOT_FOUND = "No such webhook of mine"
REFUSED = "Invalid fields, or a URL the SSRF policy refuses (not http(s), or not public)"


@blp.route("/webhooks")
class Webhooks(MethodView):
    @authenticated
    @blp.doc(operationId="listWebhooks")
    @blp.arguments(PageQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, WebhookPageOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List my webhooks, newest first (secrets are never shown again)."""
        return paged(webhooks_of(current_user().id), query)

    @authenticated
    @blp.doc(operationId="createWebhook")
    @blp.arguments(WebhookIn())
    @blp.response(201, WebhookCreatedOut)
    @blp.alt_response(409, schema=ErrorOut, description="I already have WEBHOOK_LIMIT webhooks")
    @blp.alt_response(422, schema=ErrorOut, description=REFUSED)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Add a webhook; the response carries its signing secret, shown this once only."""
        s = settings()
        hook, secret = create_webhook(
            current_user().id,
            data["url"],
            data["events"],
            data.get("description"),
            limit=s.webhook_limit,
            allow_loopback=s.webhook_allow_loopback,
        )
        db.commit()
        body: dict[str, Any] = {key: getattr(hook, key) for key in WebhookOut().fields}
        return {**body, "secret": secret}


@blp.route("/webhooks/<uuid:webhook_id>")
class WebhookById(MethodView):
    @authenticated
    @blp.doc(operationId="getWebhook")
    @blp.response(200, WebhookOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, webhook_id: uuid.UUID) -> Webhook:
        """One of my webhooks (without its secret)."""
        return get_owned_webhook(current_user().id, webhook_id)

    @authenticated
    @blp.doc(operationId="updateWebhook")
    @blp.arguments(WebhookPatch())
    @blp.response(200, WebhookOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorOut, description=REFUSED)
    def patch(self, data: dict[str, Any], webhook_id: uuid.UUID) -> Webhook:
        """Change my webhook's events or description, pause it, or re-enable it."""
        hook = get_owned_webhook(current_user().id, webhook_id)
        update_webhook(hook, data, allow_loopback=settings().webhook_allow_loopback)
        db.commit()
        return hook

    @authenticated
    @blp.doc(operationId="deleteWebhook")
    @blp.response(204)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def delete(self, webhook_id: uuid.UUID) -> None:
        """Delete my webhook and its attempts; deliveries still queued are skipped."""
        delete_webhook(get_owned_webhook(current_user().id, webhook_id))
        db.commit()


@blp.route("/webhooks/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @authenticated
    @blp.doc(operationId="listWebhookDeliveries")
    @blp.arguments(WebhookAttemptQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, WebhookAttemptsOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, query: dict[str, Any], webhook_id: uuid.UUID) -> dict[str, Any]:
        """Every delivery attempt (and ping) of my webhook, newest first, paged by cursor."""
        hook = get_owned_webhook(current_user().id, webhook_id)
        rows, next_cursor = cursor_page(
            lambda n: attempts_page(hook.id, query.get("cursor"), n),
            query["limit"],
            lambda row: row.id,
        )
        return {"rows": rows, "next_cursor": next_cursor}


@blp.route("/webhooks/<uuid:webhook_id>/ping")
class WebhookPing(MethodView):
    @authenticated
    @blp.doc(operationId="pingWebhook")
    @blp.response(202, WebhookPingOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(429, schema=ErrorOut, description="Pinged in the last 10 seconds")
    def post(self, webhook_id: uuid.UUID) -> dict[str, Any]:
        """Queue a signed test `ping` to my webhook; its attempt shows in the deliveries."""
        hook = get_owned_webhook(current_user().id, webhook_id)
        ping_id = uuid.uuid4()
        if enqueue_webhook_ping(redis_client(), str(hook.id), str(ping_id)) is None:
            abort(
                429,
                message=f"This webhook was pinged in the last {WEBHOOK_PING_INTERVAL_S} "
                "seconds; wait a little.",
            )
        return {"id": ping_id, "event": "ping", "queued_at": datetime.now(UTC)}
