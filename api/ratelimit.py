"""Rate limiting with flask-limiter on Redis (in-memory fallback when Redis is down).

Every request counts against one API-wide budget per caller: per user (by role,
admins exempt) when it carries a valid access token, else per client address.
Login and registration add their own tighter limits.

Limit strings come from settings at request time, so tests and operators can
change them without touching decorators. Keys:

- ``ip``: the client address (after ProxyFix, when configured);
- ``account``: the login or email named in the JSON body, lower-cased, so an
  attacker spreading guesses over many addresses is still limited per account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter


def client_ip() -> str:
    """The caller's address as the app sees it."""
    return request.remote_addr or "unknown"


def body_field_key(field: str) -> Callable[[], str]:
    """A key function reading ``field`` from the JSON body (lower-cased)."""

    def key() -> str:
        body: Any = request.get_json(silent=True)
        value = body.get(field) if isinstance(body, dict) else None
        if not isinstance(value, str) or not value.strip():
            return f"{field}:-"
        return f"{field}:{value.strip().lower()[:254]}"

    key.__name__ = f"key_{field}"
    return key


def setting(name: str) -> Callable[[], str]:
    """A limit provider that reads ``Settings.<name>`` for the current app."""

    def limit() -> str:
        return str(getattr(current_app.extensions["botyard.settings"], name))

    return limit


def failed_only(response: Any) -> bool:
    """Deduct only for failed attempts (bad credentials), not for successes."""
    return bool(response.status_code in (400, 401, 403, 422))


def _token_caller(token: str) -> tuple[str, tuple[str, ...]] | None:
    try:
        claims = decode_token(token)
    except Exception:
        return None
    if claims.get("type") != "access":
        return None
    return f"user:{claims['sub']}", tuple(claims.get("roles", ()))


def _caller() -> tuple[str, tuple[str, ...]]:
    """("user:<id>", roles) for a valid bearer token, else ("ip:<addr>", ()). Cached per request.

    The token is only decoded (signature and expiry), not checked for revocation: a revoked
    token merely keeps its owner's budget until the view refuses it.
    """
    # Cached on the request, not on ``g``: an app context can outlive one request (tests, CLI).
    cached = request.environ.get("botyard.rate_limit_caller")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    caller: tuple[str, tuple[str, ...]] = (f"ip:{client_ip()}", ())
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token and request.path.endswith("/stream"):
        token = request.args.get("access_token", "")
    if token:
        caller = _token_caller(token) or caller
    request.environ["botyard.rate_limit_caller"] = caller
    return caller


def caller_key() -> str:
    """The API-wide limit's key: the user for authenticated calls, else the client address."""
    return _caller()[0]


def caller_limit() -> str:
    """The API-wide limit for this caller's best role (settings ``rate_limit_*``)."""
    s = current_app.extensions["botyard.settings"]
    key, roles = _caller()
    if "moderator" in roles:
        return str(s.rate_limit_moderator)
    if key.startswith("user:"):
        return str(s.rate_limit_user)
    return str(s.rate_limit_anonymous)


# Probes and the API description are never limited: orchestrators poll them.
EXEMPT_ENDPOINT_PREFIXES = ("health.", "api-docs.", "docs-assets.")


def caller_is_exempt() -> bool:
    """Admins, health probes and the docs are outside the API-wide limit."""
    endpoint = request.endpoint or ""
    return endpoint.startswith(EXEMPT_ENDPOINT_PREFIXES) or "admin" in _caller()[1]


limiter = Limiter(
    key_func=caller_key,
    application_limits=[caller_limit],
    application_limits_exempt_when=caller_is_exempt,
    headers_enabled=True,
    in_memory_fallback_enabled=True,
    retry_after="delta-seconds",
    key_prefix="botyard-rl",
    strategy="moving-window",
)


@limiter.request_filter
def is_preflight() -> bool:
    """OPTIONS requests run no view (Flask answers them) and must not spend a caller's budget.

    A browser sends a CORS preflight before many cross-origin calls; counting those would
    halve a web app's budget and could refuse the preflight of a call that would have passed.
    """
    return request.method == "OPTIONS"
