"""The one error shape, for every layer: HTTP errors, domain errors, JWT errors, outages.

``{"code", "status", "message", "errors"?, "request_id"}`` - flask-smorest's
payload plus the request id. A client mistake is a 4xx with a message a person
can act on; a failure of ours is a 500 that says nothing about internals.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import marshmallow as ma
import structlog
from flask import Flask, Response, g, jsonify
from flask_smorest import Api
from psycopg import OperationalError as PsycopgOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from api.openapi import ContractPlugin
from models.errors import DomainError

log = structlog.get_logger(__name__)

UNAVAILABLE_MESSAGE = "A backing service is unavailable; try again shortly."
# Retry-After on every 503, as documented in docs/api.md.
UNAVAILABLE_RETRY_AFTER = "5"


class ErrorOut(ma.Schema):
    """Every error response."""

    code = ma.fields.Integer(metadata={"description": "HTTP status code"})
    status = ma.fields.String(metadata={"description": "HTTP status name"})
    message = ma.fields.String(metadata={"description": "What went wrong, for a person"})
    errors = ma.fields.Dict(metadata={"description": "Field errors, keyed by location and field"})
    request_id = ma.fields.String(metadata={"description": "Echo of X-Request-ID"})


def error_payload(code: int, message: str, errors: Any = None) -> dict[str, Any]:
    """The error body for ``code``."""
    payload: dict[str, Any] = {
        "code": code,
        "status": HTTPStatus(code).phrase,
        "message": message,
        "request_id": g.get("request_id"),
    }
    if errors:
        payload["errors"] = errors
    return payload


def error_response(code: int, message: str, errors: Any = None) -> Response:
    """A JSON error response in the one shape."""
    response = jsonify(error_payload(code, message, errors))
    response.status_code = code
    if code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


_GENERIC_MESSAGES = {
    400: "The request could not be read; see errors.",
    422: "The request is invalid; see errors.",
    500: "Internal server error; it has been logged.",
}


def _message_for(error: HTTPException) -> str:
    """The caller's own description if one was given, else a useful default."""
    code = error.code or 500
    if code == 429:
        # flask-limiter's description is the limit itself, e.g. "120 per 1 minute".
        return (
            f"Too many requests: the limit is {error.description}. "
            "Retry after the number of seconds in Retry-After."
        )
    custom = error.description and error.description != type(error).description
    if custom and code != 500:
        return str(error.description)
    return _GENERIC_MESSAGES.get(code) or error.description or HTTPStatus(code).phrase


class BotyardApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with our error payload (request id, always a message)."""

    ERROR_SCHEMA = ErrorOut

    def __init__(self, app: Flask | None = None, **kwargs: Any) -> None:
        # Our plugin makes response fields required and nullable objects typed (api/openapi.py).
        spec_kwargs = {"marshmallow_plugin": ContractPlugin(), **kwargs.pop("spec_kwargs", {})}
        super().__init__(app, spec_kwargs=spec_kwargs, **kwargs)

    def handle_http_exception(self, error: HTTPException) -> Any:
        """Render any HTTPException (including wrapped 500s) in the one shape."""
        payload, code, headers = super().handle_http_exception(error)
        original = getattr(error, "original_exception", None)
        if original is not None and error.code == 500:
            if is_outage(original):
                return handle_outage(original)
            log.error("unhandled_exception", exc_info=original)
            payload["message"] = _message_for(error)
        payload.setdefault("message", _message_for(error))
        payload["status"] = HTTPStatus(code).phrase
        payload["request_id"] = g.get("request_id")
        if hasattr(error, "get_headers"):
            for name, value in error.get_headers():
                if name.lower() != "content-type":
                    headers.setdefault(name, value)
        return payload, code, headers


_OUTAGE_ERRORS = (
    PsycopgOperationalError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means Postgres or Redis is unreachable (not a bug of ours)."""
    if isinstance(exc, _OUTAGE_ERRORS):
        return True
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, PsycopgOperationalError)
    return False


def handle_outage(exc: BaseException) -> Response:
    """Postgres or Redis is unreachable: 503, never a traceback."""
    log.error("backing_service_unavailable", error_type=type(exc).__name__)
    response = error_response(503, UNAVAILABLE_MESSAGE)
    response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    return response


def documented_retry_after(response: Response) -> Response:
    """after_request: a 503 says when to retry by our value, not the rate limiter's.

    flask-limiter rewrites ``Retry-After`` to the later of the header and its window's
    reset (up to a minute away), so a client told to wait 5 s would wait 60 (issue 12).
    """
    if response.status_code == 503:
        response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    return response


def handle_domain_error(exc: DomainError) -> Response:
    """Map a domain error to its status with its safe message."""
    return error_response(exc.status, exc.message, exc.errors)


def _handle_dbapi_error(exc: DBAPIError) -> Response:
    if is_outage(exc):
        return handle_outage(exc)
    if isinstance(exc, IntegrityError):
        # Helpers check uniqueness first; this is the race two requests can still run.
        diag = getattr(exc.orig, "diag", None)
        log.warning("integrity_conflict", constraint=getattr(diag, "constraint_name", None))
        return error_response(409, "That conflicts with a change made at the same time; retry.")
    log.error("database_error", exc_info=exc)
    return error_response(500, "Internal server error; it has been logged.")


def register_error_handlers(app: Flask) -> None:
    """Wire domain errors and outages; HTTP errors go through BotyardApi.

    Call before ``limiter.init_app``: after_request hooks run in reverse order, so
    :func:`documented_retry_after` then runs after the limiter's own.
    """
    app.after_request(documented_retry_after)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(DBAPIError, _handle_dbapi_error)
    for exc_type in _OUTAGE_ERRORS:
        app.register_error_handler(exc_type, handle_outage)
