"""Per-user abuse limits on community actions (docs/community.md#abuse-limits).

Each action in ``settings.COMMUNITY_ACTIONS`` has a budget per user, ``RATE_LIMIT_<ACTION>``
(for example ``10/minute;200/day``), counted on top of the API-wide limit in Redis like
every other limit. A moderator's budget is ``COMMUNITY_MODERATOR_FACTOR`` times a user's;
an admin has none. A refused call gets the API's 429 with ``Retry-After``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app

from api.ratelimit import caller_key, caller_roles, limiter
from settings import COMMUNITY_ACTIONS

F = TypeVar("F", bound=Callable[..., Any])
_COUNT = re.compile(r"\d+")


def budget(action: str, roles: tuple[str, ...]) -> str:
    """The limit string of ``action`` for a caller with ``roles`` (the user's, or scaled)."""
    settings = current_app.extensions["botyard.settings"]
    value = str(getattr(settings, f"rate_limit_{action}"))
    if "moderator" in roles or "admin" in roles:
        factor = int(settings.community_moderator_factor)
        value = _COUNT.sub(lambda m: str(int(m.group()) * factor), value)
    return value


def _is_admin() -> bool:
    return "admin" in caller_roles()


def action_limit(action: str) -> Callable[[F], F]:
    """Decorate a view with the caller's budget for ``action`` (one entry per call)."""
    if action not in COMMUNITY_ACTIONS:
        raise ValueError(f"unknown community action {action!r}")

    def limit() -> str:
        return budget(action, caller_roles())

    # Shared: one budget per action across every route that spends it (forks and mirrors,
    # new comments and edits), not one per route.
    route_limit = limiter.shared_limit(
        limit, scope=f"community-{action}", key_func=caller_key, exempt_when=_is_admin
    )
    return cast(Callable[[F], F], route_limit)
