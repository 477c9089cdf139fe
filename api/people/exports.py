"""My data exports: ask for one (202), follow it, list them, download it while it lasts."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import marshmallow as ma
import structlog
from flask import Response, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from redis.exceptions import RedisError

from api import time_cursor as cursors
from api.access import authenticated, current_user
from api.auth.tokens import now_utc
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.pagination import cursor_page
from api.people import blp
from api.people.activity import track
from api.people.lifecycle_schemas import DataExportListOut, DataExportOut, DataExportQuery
from models.db import session as db
from models.people.exports import (
    get_owned_export,
    is_downloadable,
    list_exports,
    payload_of,
    request_export,
)
from models.people.tables import DataExport
from workers.enqueue import enqueue_export

log = structlog.get_logger(__name__)

NOT_FOUND = "No such export of mine"
LOCATION = {"description": "The export's URL", "schema": {"type": "string"}}
# The download: the export document itself (shape in docs/accounts.md).
DOCUMENT = {"type": "object", "description": "The export document (docs/accounts.md)"}
CHUNK = 64 * 1024


def export_view(export: DataExport, now: datetime) -> dict[str, Any]:
    """The response body: the row, plus its download URL while it can be downloaded."""
    body = {key: getattr(export, key) for key in DataExportOut().fields if hasattr(export, key)}
    body["download_url"] = (
        url_for("me.DataExportDownload", export_id=export.id)
        if is_downloadable(export, now)
        else None
    )
    return body


def _cursor_of(export: DataExport) -> str:
    return cursors.encode(export.created_at, export.id)


@blp.route("/export")
class DataExportRequest(MethodView):
    @authenticated
    @blp.doc(operationId="requestDataExport")
    @blp.response(202, DataExportOut, headers={"Location": LOCATION})
    @blp.alt_response(409, schema=ErrorOut, description="An export is already being prepared")
    @blp.alt_response(429, schema=ErrorOut, description="Too many exports today")
    def post(self) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Ask for a JSON export of everything I own; I am notified when it is ready."""
        user, now = current_user(), now_utc()
        export = request_export(user.id, now, settings().export_limit_per_day)
        track("account.export_requested", object_type="data_export", object_id=export.id)
        # Committed first, so the worker finds the row; if Redis refuses the job, the export
        # stays queued and the purge marks it failed after a while, so it can be asked again.
        db.commit()
        try:
            enqueue_export(redis_client(), str(export.id))
        except RedisError as exc:
            log.warning("export_enqueue_failed", error_type=type(exc).__name__)
        location = url_for("me.DataExportById", export_id=export.id)
        return export_view(export, now), 202, {"Location": location}


@blp.route("/exports")
class DataExports(MethodView):
    @authenticated
    @blp.doc(operationId="listDataExports")
    @blp.arguments(DataExportQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, DataExportListOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """My data exports, newest first (cursor paged)."""
        user, now = current_user(), now_utc()
        before = cursors.decode(query.get("cursor"))
        rows, next_cursor = cursor_page(
            lambda n: list_exports(user.id, before, n), query["limit"], _cursor_of
        )
        return {"items": [export_view(e, now) for e in rows], "next_cursor": next_cursor}


@blp.route("/exports/<uuid:export_id>")
class DataExportById(MethodView):
    @authenticated
    @blp.doc(operationId="getDataExport")
    @blp.response(200, DataExportOut)
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    def get(self, export_id: uuid.UUID) -> dict[str, Any]:
        """One of my exports: status, size, expiry, and the download URL once ready."""
        return export_view(get_owned_export(current_user().id, export_id), now_utc())


def _inflate(data: bytes) -> Iterator[bytes]:
    """The gzip ``data`` decompressed, a chunk at a time."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for start in range(0, len(data), CHUNK):
        out = inflater.decompress(data[start : start + CHUNK])
        if out:
            yield out
    rest = inflater.flush()
    if rest:
        yield rest


@blp.route("/exports/<uuid:export_id>/download")
class DataExportDownload(MethodView):
    @authenticated
    @blp.doc(operationId="downloadDataExport")
    @blp.response(200, DOCUMENT, content_type="application/json")
    @blp.alt_response(404, schema=ErrorOut, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorOut, description="Not ready yet, or failed")
    @blp.alt_response(410, schema=ErrorOut, description="Expired: ask for a new export")
    def get(self, export_id: uuid.UUID) -> Response:
        """Download my export as a JSON file (gzip-encoded when the client accepts gzip)."""
        export = get_owned_export(current_user().id, export_id)
        now = now_utc()
        if export.status == "expired" or (
            export.status == "ready" and not is_downloadable(export, now)
        ):
            abort(410, message="This export has expired; ask for a new one.")
        if export.status != "ready":
            abort(409, message=f"This export is {export.status}, not ready to download.")
        data = payload_of(export)
        track("account.export_downloaded", object_type="data_export", object_id=export.id)
        db.commit()
        name = f"botyard-export-{export.created_at:%Y%m%d}-{export.id.hex[:8]}.json"
        headers = {
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "private, no-store",
            "Vary": "Accept-Encoding",
        }
        if request.accept_encodings.quality("gzip") > 0:
            headers["Content-Encoding"] = "gzip"
            return Response(data, mimetype="application/json", headers=headers)
        return Response(_inflate(data), mimetype="application/json", headers=headers)
