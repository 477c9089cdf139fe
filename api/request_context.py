"""Per-request plumbing: request ids, structured access logs, body checks."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, Response, abort, g, request

from models.db import session as db

log = structlog.get_logger("botyard.request")

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Paths whose next segment is a secret (a share link's token): logged without it.
_SECRET_SEGMENT_PREFIXES = ("/api/v1/shared/",)


def loggable_path(path: str) -> str:
    """``path`` as the access log may keep it: a secret path segment replaced by ``<token>``."""
    for prefix in _SECRET_SEGMENT_PREFIXES:
        if path.startswith(prefix):
            _secret, slash, rest = path[len(prefix) :].partition("/")
            return f"{prefix}<token>{slash}{rest}"
    return path


def _begin() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    # An id we did not make is echoed only when harmless (no header or log injection).
    g.request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _require_json_body() -> None:
    if request.method not in _BODY_METHODS:
        return
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    ).lower()
    if has_body and not request.is_json:
        abort(415, description="Send the body as JSON with 'Content-Type: application/json'.")


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    started = g.get("started")
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    log.info(
        "request",
        method=request.method,
        # Never the query string, nor a share link's token: they may carry secrets.
        path=loggable_path(request.path),
        status=response.status_code,
        ms=elapsed_ms,
        endpoint=request.endpoint,
    )
    return response


def _teardown(_exc: BaseException | None) -> None:
    db.remove()


def init_request_context(app: Flask) -> None:
    """Install the hooks; the request id hook runs first of all before_request hooks."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.before_request(_require_json_body)
    app.after_request(_finish)
    app.teardown_appcontext(_teardown)
