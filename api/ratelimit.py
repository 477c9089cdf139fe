"""Rate limiting with flask-limiter on Redis (in-memory fallback when Redis is down).

Every request counts against one API-wide budget per caller: per user (by role,
admins exempt) when it carries a valid access token, else per client address.
Login and registration add their own tighter limits (docs/api.md, "Rate limits").

Limit strings come from settings at request time, so tests and operators can
change them without touching decorators. Keys:

- ``ip``: the client address (after ProxyFix, when configured);
- ``account``: the account a login names, by id, however it is named (username or
  email, any case or Unicode form), so an attacker spreading guesses over many
  addresses and spellings is still limited per account;
- a body field (``email``), NFKC-normalised and case-folded.

Key functions never raise because of the body (flask-limiter's own fallback took any
exception for a storage failure); they read the body that api/input_guard.py checked and
parsed. Only an unreachable database propagates, to be answered 503 at once.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from flask import current_app, request
from flask_jwt_extended import decode_token
from flask_limiter import Limiter

from api.errors import is_outage as _is_outage
from api.input_guard import parsed_json
from api.ratelimit_storage import OneTripRedisStorage
from models.identity.sessions import logged_in_from
from models.identity.users import find_by_login

log = structlog.get_logger(__name__)

_MAX_KEY_TEXT = 254


def client_ip() -> str:
    """The caller's address as the app sees it."""
    return request.remote_addr or "unknown"


def normalize_identity(value: str) -> str:
    """One spelling per identity: NFKC (full-width and compatibility forms), case-folded."""
    return unicodedata.normalize("NFKC", value).strip().casefold()[:_MAX_KEY_TEXT]


def _raise_outage(exc: Exception) -> None:
    """Re-raise ``exc`` if it is an outage; a key function then logs anything else as a bug.

    An unreachable database is no fault of the body: it propagates to the outage handler,
    which answers 503 at once, instead of the view waiting out a second connect timeout.
    """
    if _is_outage(exc):
        raise exc


def _body_text(field: str) -> str | None:
    body = parsed_json()
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def body_field_key(field: str) -> Callable[[], str]:
    """A key function reading ``field`` from the JSON body (normalised); never raises."""

    def key() -> str:
        try:
            value = _body_text(field)
            return f"{field}:{normalize_identity(value) if value else '-'}"
        except Exception as exc:  # a key function must not fail the limiter (module doc)
            _raise_outage(exc)
            log.error("rate_limit_key_failed", field=field, exc_info=exc)
            return f"{field}:-"

    key.__name__ = f"key_{field}"
    return key


def _login_account() -> tuple[str, Any]:
    """("user:<id>", id) for the account the login names, else ("login:<text>", None).

    Looked up once per request. The normalised spelling is tried first, then the spelling
    as sent, so ``ALICE``, its full-width form and ``alice@example.com`` share one budget.
    """
    cached = request.environ.get("botyard.login_account")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: tuple[str, Any] = ("login:-", None)
    try:
        login = _body_text("login")
        if login:
            normalized = normalize_identity(login)
            user = find_by_login(normalized) or find_by_login(login[:_MAX_KEY_TEXT])
            found = (f"user:{user.id}", user.id) if user else (f"login:{normalized}", None)
    except Exception as exc:  # a bug, or the database is down (re-raised: 503)
        _raise_outage(exc)
        log.error("rate_limit_key_failed", field="login", exc_info=exc)
    request.environ["botyard.login_account"] = found
    return found


def login_account_key() -> str:
    """The per-account login budget's key; raises only when the database is down."""
    return _login_account()[0]


def login_account_ip_key() -> str:
    """The per-account-and-address budget's key; raises only when the database is down."""
    return f"{_login_account()[0]}|ip:{client_ip()}"


def from_known_address() -> bool:
    """Whether the account named has logged in from this address within a refresh lifetime.

    Such an address is exempt from the account-wide budget (its own per-address budgets
    still apply), so guessing from elsewhere cannot lock the owner out. Raises only when the
    database is down.
    """
    user_id = _login_account()[1]
    try:
        address = str(ipaddress.ip_address(client_ip()))
    except ValueError:
        return False  # no usable address (Postgres would refuse to compare it)
    if user_id is None:
        return False
    try:
        ttl = current_app.extensions["botyard.settings"].refresh_token_ttl
        return logged_in_from(user_id, address, datetime.now(UTC) - timedelta(seconds=ttl))
    except Exception as exc:  # a bug (no exemption), or the database is down (503)
        _raise_outage(exc)
        log.error("rate_limit_known_address_failed", exc_info=exc)
        return False


def setting(name: str) -> Callable[[], str]:
    """A limit provider that reads ``Settings.<name>`` for the current app."""

    def limit() -> str:
        return str(getattr(current_app.extensions["botyard.settings"], name))

    return limit


def failed_only(response: Any) -> bool:
    """Deduct only for failed attempts (bad credentials), not for successes."""
    return bool(response.status_code in (400, 401, 403, 422))


# The login's account budgets take an entry before the password check and give it back
# after anything but a failure: counting failures only, without deduct_when's race.
REFUNDED_SCOPES = frozenset({"login-account", "login-account-ip"})


def refund_unless_failed(response: Any) -> Any:
    """after_request of the login: an attempt that did not fail gives back its account entries."""
    if failed_only(response):
        return response
    storage = limiter.storage
    if not isinstance(storage, OneTripRedisStorage):
        return response  # another storage (none is configured): failures and successes count
    for applied in limiter.current_limits:
        scope = applied.request_args[-1].rsplit(":", 1)[-1]  # "<endpoint>:<scope>"
        if scope in REFUNDED_SCOPES and not applied.breached:
            storage.refund_entry(applied.key)
    return response


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


def caller_roles() -> tuple[str, ...]:
    """The roles in the caller's access token (none when anonymous)."""
    return _caller()[1]


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
    # No in_memory_fallback: flask-limiter would switch on any exception. The storage
    # fails over itself, on connection errors only (api/ratelimit_storage.py).
    in_memory_fallback_enabled=False,
    swallow_errors=False,
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
