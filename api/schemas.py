"""Schemas shared across areas: the user as others and as its owner see it, paging."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma


class StrictSchema(ma.Schema):
    """Unknown fields are an error, never silently assigned."""

    class Meta:
        unknown = ma.RAISE


class UserOut(ma.Schema):
    """An account as its owner or an admin sees it (never the password hash)."""

    id = ma.fields.UUID(dump_only=True)
    email = ma.fields.String()
    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    bio = ma.fields.String(allow_none=True)
    is_active = ma.fields.Boolean()
    roles = ma.fields.List(ma.fields.String(), attribute="role_names")
    permissions = ma.fields.List(ma.fields.String(), attribute="permission_names")
    created_at = ma.fields.DateTime()
    last_login_at = ma.fields.DateTime(allow_none=True)
    disabled_at = ma.fields.DateTime(allow_none=True)


class PageQuery(StrictSchema):
    """``page`` from 1, ``page_size`` up to the endpoint's maximum."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class Timestamp(ma.fields.Field[int]):
    """Epoch milliseconds or an ISO 8601 time (UTC assumed when no offset is given)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            number = int(text)
            if not 0 <= number < 4_102_444_800_000:  # 2100-01-01
                raise ma.ValidationError("Milliseconds since 1970 must be between 1970 and 2100.")
            return number
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ma.ValidationError(
                "Use epoch milliseconds or ISO 8601, e.g. 2026-01-31T00:00:00Z."
            ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
