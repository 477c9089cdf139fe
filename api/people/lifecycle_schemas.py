"""Request and response bodies of the account lifecycle: data exports and account deletion."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of

EXPORT_STATUSES = ("queued", "running", "ready", "failed", "expired")


class DataExportOut(OutSchema):
    """One data export: its state, and its download URL while it is ready."""

    id = ma.fields.UUID()
    status = ma.fields.String(**one_of(EXPORT_STATUSES))
    created_at = ma.fields.DateTime()
    ready_at = ma.fields.DateTime(allow_none=True)
    expires_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "The download stops working at this time"}
    )
    size_bytes = ma.fields.Integer(
        allow_none=True, metadata={"description": "Size of the gzip-compressed JSON file"}
    )
    error = ma.fields.String(allow_none=True)
    download_url = ma.fields.String(
        allow_none=True, metadata={"description": "Set while the export is ready"}
    )


class DataExportListOut(OutSchema):
    """My exports, newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    items = ma.fields.List(ma.fields.Nested(DataExportOut))
    next_cursor = ma.fields.String(allow_none=True)


class DataExportQuery(StrictSchema):
    """Cursor paging of the exports list."""

    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(validate=ma.validate.Length(max=100))


class AccountDeletionIn(StrictSchema):
    """My password, to confirm that I want my account deleted."""

    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(min=1, max=1024)
    )


class AccountDeletionOut(OutSchema):
    """When the account will be erased, and how to stop it."""

    deletion_requested_at = ma.fields.DateTime()
    deletion_due_at = ma.fields.DateTime()
    message = ma.fields.String()
