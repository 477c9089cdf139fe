"""Cross-origin access for browser apps (flask-cors), from settings.

Only ``/api/…`` answers cross-origin callers, and only the origins in
``CORS_ORIGINS`` (default: the origin of ``FRONTEND_URL``). Tokens travel in the
``Authorization`` header, not in cookies, so credentials stay off unless an
operator turns them on. Preflights are answered by Flask itself (no view runs),
are not rate limited (``api.ratelimit``) and need no token (``api.access``).
See docs/api.md, "CORS".
"""

from __future__ import annotations

import re

from flask import Flask, Response, request
from flask_cors import CORS

from settings import Settings

# Response headers a browser script may read: the backtest's URL, the request id to quote
# in a report, the rate-limit budget (flask-limiter's names), and the cache validator.
EXPOSE_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "X-Request-ID",
)
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "If-None-Match",
    "Last-Event-ID",
    "X-Request-ID",
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
API_PATHS = r"/api/.*"


def _origin_patterns(origins: tuple[str, ...]) -> list[str | re.Pattern[str]]:
    """Exact, case-insensitive matches: flask-cors reads '.', '[' or ']' in a string as a regex."""
    return [
        origin if origin == "*" else re.compile(re.escape(origin) + r"\Z", re.IGNORECASE)
        for origin in origins
    ]


def init_cors(app: Flask, settings: Settings) -> None:
    """Answer cross-origin calls to /api/ from the configured origins."""
    wildcard = "*" in settings.cors_origins
    CORS(
        app,
        resources={API_PATHS: {}},
        origins=_origin_patterns(settings.cors_origins),
        methods=list(METHODS),
        allow_headers=list(ALLOW_HEADERS),
        expose_headers=list(EXPOSE_HEADERS),
        supports_credentials=settings.cors_allow_credentials,
        max_age=settings.cors_max_age,
        # "*" is sent as "*" (never the caller's origin reflected) unless credentials are on.
        send_wildcard=wildcard and not settings.cors_allow_credentials,
        # No Origin header, no CORS headers (flask-cors would otherwise list every origin).
        always_send=False,
        vary_header=False,
    )
    if not wildcard or settings.cors_allow_credentials:
        app.after_request(_vary_on_origin)


def _vary_on_origin(response: Response) -> Response:
    """Caches must keep one copy per Origin: only allowed origins get the CORS headers."""
    if request.path.startswith("/api/"):
        response.vary.add("Origin")
    return response
