"""Schemas shared across areas: the user, paging, and the trade and equity shapes of runs."""

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
        digits = text.lstrip("-")
        if digits.isascii() and digits.isdigit():  # not "²", which isdigit() accepts
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


MAX_EQUITY_PAGE = 5000


class TradeOut(ma.Schema):
    """A closed trade."""

    seq = ma.fields.Integer()
    side = ma.fields.String()
    units = ma.fields.Float()
    entry_time = ma.fields.DateTime()
    entry_price = ma.fields.Float()
    exit_time = ma.fields.DateTime()
    exit_price = ma.fields.Float()
    fees = ma.fields.Float()
    pnl = ma.fields.Float()
    pnl_pct = ma.fields.Float()
    exit_reason = ma.fields.String()


class EquityQuery(StrictSchema):
    """``points`` for a chart (downsampled), or ``cursor``/``limit`` to page through every bar."""

    points = ma.fields.Integer(validate=ma.validate.Range(min=2, max=5000))
    cursor = Timestamp(metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(
        load_default=1000, validate=ma.validate.Range(min=1, max=MAX_EQUITY_PAGE)
    )

    @ma.validates_schema
    def _one_mode(self, data: dict[str, object], **_kwargs: object) -> None:
        if "points" in data and "cursor" in data:
            raise ma.ValidationError("Use points (a chart) or cursor (paging), not both.", "points")


class EquityOut(ma.Schema):
    """Rows are ``[ts_ms, equity]`` at bar closes, oldest first."""

    # Raw: the ts stays an integer (a Float field would send 1767225600000.0).
    rows = ma.fields.List(
        ma.fields.List(ma.fields.Raw()), metadata={"description": "[ts_ms (int), equity]"}
    )
    total = ma.fields.Integer(metadata={"description": "Bars in the full curve"})
    next_cursor = ma.fields.Integer(allow_none=True)
