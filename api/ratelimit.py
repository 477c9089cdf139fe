"""Rate limiting with flask-limiter on Redis (in-memory fallback when Redis is down).

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


limiter = Limiter(
    key_func=client_ip,
    headers_enabled=True,
    in_memory_fallback_enabled=True,
    retry_after="delta-seconds",
    key_prefix="botyard-rl",
    strategy="moving-window",
)
