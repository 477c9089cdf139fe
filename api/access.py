"""Access policies: every view declares one, and a request to a view without one is refused.

The policies: ``public``, ``authenticated``, ``fresh-login`` (an access token
issued by a login, not a refresh), ``refresh-token`` and a permission
(``require_permission("users:manage")``). ``deny_undeclared`` runs before every
request; the URL-map audit test fails the build for any route left undeclared.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

import structlog
from flask import abort, current_app, request
from flask_jwt_extended import get_jwt, get_jwt_identity, verify_jwt_in_request
from flask_smorest import abort as smorest_abort

from models.db import session as db
from models.identity.passwords import verify_password
from models.identity.tables import User

F = TypeVar("F", bound=Callable[..., Any])

POLICY_ATTR = "_access_policy"
PUBLIC = "public"
AUTHENTICATED = "authenticated"
REFRESH = "refresh-token"
FRESH = "fresh-login"

# Endpoints registered by libraries (docs, static files), public by declaration here.
LIBRARY_PUBLIC_ENDPOINTS = frozenset(
    {"static", "api-docs.openapi_json", "api-docs.openapi_swagger_ui"}
)

log = structlog.get_logger(__name__)


def _mark(func: Any, policy: str) -> None:
    setattr(func, POLICY_ATTR, policy)


def public(func: F) -> F:
    """Anyone may call this view."""
    _mark(func, PUBLIC)
    return func


def authenticated(func: F) -> F:
    """A valid, unrevoked access token is required."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request()
        return func(*args, **kwargs)

    _mark(wrapper, AUTHENTICATED)
    return cast(F, wrapper)


def fresh_login_required(func: F) -> F:
    """A valid access token issued by a login itself, not by a refresh (for sensitive changes)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request(fresh=True)
        return func(*args, **kwargs)

    _mark(wrapper, FRESH)
    return cast(F, wrapper)


def refresh_token_required(func: F) -> F:
    """A valid refresh token (not an access token) is required."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request(refresh=True)
        return func(*args, **kwargs)

    _mark(wrapper, REFRESH)
    return cast(F, wrapper)


def require_permission(permission: str) -> Callable[[F], F]:
    """A valid access token whose user holds ``permission`` (403 otherwise)."""

    def decorator(func: F) -> F:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verify_jwt_in_request()
            if not current_user().has_permission(permission):
                abort(403, description=f"This needs the {permission!r} permission.")
            return func(*args, **kwargs)

        _mark(wrapper, f"permission:{permission}")
        return cast(F, wrapper)

    return decorator


def current_user() -> User:
    """The active user behind the verified token (cached for the request).

    Cached in the WSGI environ rather than on ``g``: an app context may span several
    requests (tests, CLI), and a user must never leak from one request to the next.
    """
    cached = request.environ.get("botyard.current_user")
    if cached is not None:
        return cast(User, cached)
    user = db.get(User, uuid.UUID(str(get_jwt_identity())))
    if user is None or not user.is_active:
        abort(401, description="This account is disabled or no longer exists.")
    request.environ["botyard.current_user"] = user
    return user


def optional_viewer_id() -> uuid.UUID | None:
    """On a public view: the caller's user id if they sent a valid access token, else None."""
    verify_jwt_in_request(optional=True)
    identity = get_jwt_identity()
    return uuid.UUID(str(identity)) if identity else None


def current_user_with_password(password: str, field: str = "password") -> User:
    """The current user, once ``password`` is theirs; else a 422 naming ``field``.

    For the actions a stolen token alone must not do: change the password or the email,
    delete the account.
    """
    user = current_user()
    if not verify_password(user.password_hash, password):
        message = "That is not your current password."
        smorest_abort(422, message=message, errors={"json": {field: [message]}})
    return user


def current_session_id() -> uuid.UUID:
    """The session id carried by the verified token."""
    return uuid.UUID(str(get_jwt()["sid"]))


def policy_of(endpoint: str | None, method: str) -> str | None:
    """The declared policy of ``endpoint`` for ``method``, or None."""
    if endpoint is None:
        return None
    if endpoint in LIBRARY_PUBLIC_ENDPOINTS:
        return PUBLIC
    view = current_app.view_functions.get(endpoint)
    if view is None:
        return None
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        return getattr(handler, POLICY_ATTR, None)
    return getattr(view, POLICY_ATTR, None)


def deny_undeclared() -> None:
    """before_request: refuse any route that declares no access policy."""
    if request.method == "OPTIONS" or request.endpoint is None:
        return  # routing errors (404/405) are answered by Flask itself
    if policy_of(request.endpoint, request.method) is None:
        log.error("route_without_access_policy", endpoint=request.endpoint)
        abort(403, description="This endpoint is not available.")
