"""Schemas of my webhooks (`/api/v1/me/webhooks`): the hook, its secret once, its attempts."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.pagination import page_schema
from api.schemas import OutSchema, StrictSchema, one_of
from models.people.events import EVENTS
from models.people.webhook_urls import MAX_URL_LENGTH

MAX_ATTEMPT_PAGE = 100


def _events_field(**kwargs: Any) -> ma.fields.List[Any]:
    return ma.fields.List(
        ma.fields.String(
            **one_of(sorted(EVENTS), {name: name.replace(".", "_") for name in EVENTS})
        ),
        validate=ma.validate.Length(min=1, max=len(EVENTS)),
        metadata={"description": "The events delivered to this webhook"},
        **kwargs,
    )


class WebhookIn(StrictSchema):
    """A new webhook: where to send, and which events."""

    url = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_URL_LENGTH),
        metadata={"description": "http(s) URL on a public address (docs/webhooks.md)"},
    )
    events = _events_field(required=True)
    description = ma.fields.String(validate=ma.validate.Length(max=200), allow_none=True)


class WebhookPatch(StrictSchema):
    """Change some of a webhook's fields; ``is_active: true`` re-enables a disabled one."""

    events = _events_field()
    description = ma.fields.String(validate=ma.validate.Length(max=200), allow_none=True)
    is_active = ma.fields.Boolean(
        metadata={"description": "true re-enables (failures start over); false pauses"}
    )


class WebhookOut(OutSchema):
    """A webhook as its owner sees it (never its secret)."""

    id = ma.fields.UUID()
    url = ma.fields.String()
    events = ma.fields.List(ma.fields.String())
    description = ma.fields.String(allow_none=True)
    is_active = ma.fields.Boolean()
    consecutive_failures = ma.fields.Integer()
    disabled_at = ma.fields.DateTime(allow_none=True)
    disabled_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()


class WebhookCreatedOut(WebhookOut):
    """A new webhook with its signing secret: shown in this response only, never again."""

    secret = ma.fields.String(metadata={"description": "Signs every delivery; store it now"})


WebhookPageOut = page_schema(WebhookOut, "WebhookPage")


class WebhookAttemptQuery(StrictSchema):
    """Page a webhook's attempts, newest first."""

    cursor = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "next_cursor of the last page"},
    )
    limit = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=MAX_ATTEMPT_PAGE)
    )


class WebhookAttemptOut(OutSchema):
    """One attempt at a delivery (or a ping): what the receiver answered, or the error."""

    id = ma.fields.Integer()
    delivery_id = ma.fields.UUID(allow_none=True, metadata={"description": "null for a ping"})
    event = ma.fields.String()
    attempt = ma.fields.Integer(metadata={"description": "1 for the first try"})
    succeeded = ma.fields.Boolean()
    status_code = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer()
    created_at = ma.fields.DateTime()


class WebhookAttemptsOut(OutSchema):
    """A page of attempts, newest first; ``next_cursor`` is null on the last page."""

    rows = ma.fields.List(ma.fields.Nested(WebhookAttemptOut))
    next_cursor = ma.fields.Integer(allow_none=True)


class WebhookPingOut(OutSchema):
    """A queued ping: its attempt appears among the webhook's deliveries."""

    id = ma.fields.UUID(metadata={"description": "X-Botyard-Delivery of the ping"})
    event = ma.fields.String()
    queued_at = ma.fields.DateTime()
