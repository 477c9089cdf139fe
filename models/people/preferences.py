"""Account settings: one document per user, validated here, defaults from one place.

The stored document holds only what the user changed; :func:`effective_settings`
lays it over :func:`default_settings`, so every reader sees the whole document.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from models.db import session as db
from models.people.events import CHANNELS, EVENTS
from models.people.tables import AccountSettings

DIGEST_MODES = ("off", "daily")
PROFILE_VISIBILITIES = ("public", "private")
BOT_VISIBILITIES = ("private", "unlisted", "public")


def default_settings() -> dict[str, Any]:
    """The settings document of a user who never changed anything (a fresh copy)."""
    return {
        "notifications": {
            name: {
                "in_app": spec.in_app,
                "email": spec.email or spec.security,
                "webhook": spec.webhook,
                "digest": spec.digest,
            }
            for name, spec in EVENTS.items()
        },
        "email_digest": "off",
        "trading_defaults": {"initial_capital": 10_000.0, "fee": 0.001, "slippage_bps": 5.0},
        "profile_visibility": "public",
        "default_bot_visibility": "private",
    }


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, nested objects merged key by key (a new dict)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def stored_changes(user_id: uuid.UUID) -> dict[str, Any]:
    """What the user changed from the defaults (empty when nothing)."""
    row = db.get(AccountSettings, user_id)
    return dict(row.document) if row is not None else {}


def effective_settings(user_id: uuid.UUID) -> dict[str, Any]:
    """The user's whole settings document: defaults with their changes laid over."""
    return merge(default_settings(), stored_changes(user_id))


def channels_for(settings: dict[str, Any], event: str) -> dict[str, bool]:
    """Which channels ``event`` goes to under ``settings``.

    Security events always email at once; ``digest`` holds only while the daily digest
    is on, and an event mailed at once is not digested too.
    """
    spec = EVENTS[event]
    chosen = dict(settings["notifications"].get(event, {}))
    if spec.security:
        chosen["email"] = True
    if settings.get("email_digest") != "daily" or chosen.get("email"):
        chosen["digest"] = False
    return {channel: bool(chosen.get(channel, False)) for channel in CHANNELS}
