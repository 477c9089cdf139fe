"""Account settings: one document per user, validated here, defaults from one place.

The stored document holds only what the user changed; :func:`effective_settings`
lays it over :func:`default_settings`, so every reader sees the whole document.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from models.db import session as db
from models.people.events import CHANNELS, EVENTS
from models.people.tables import AccountSettings

DIGEST_MODES = ("off", "daily")
PROFILE_VISIBILITIES = ("public", "private")


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


# Bounds of the trading defaults: the same as a bot's own fields (api/bots/schemas.py).
TRADING_BOUNDS: dict[str, tuple[float, float]] = {
    "initial_capital": (1.0, 1e9),
    "fee": (0.0, 0.05),
    "slippage_bps": (0.0, 500.0),
}


def security_problems(settings: dict[str, Any]) -> dict[str, Any]:
    """Field errors for a whole document that turns off a security event's email (or {}).

    Security events always email (models/people/events.py); a document saying otherwise
    is refused rather than silently corrected, so what the user reads back is what they sent.
    """
    problems: dict[str, Any] = {}
    for name, prefs in settings.get("notifications", {}).items():
        spec = EVENTS.get(name)
        if spec is not None and spec.security and prefs.get("email") is False:
            problems[name] = {"email": ["Security events are always emailed."]}
    return {"notifications": problems} if problems else {}


def differences(base: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The parts of ``document`` that differ from ``base``, nested objects compared key by key."""
    changes: dict[str, Any] = {}
    for key, value in document.items():
        default = base.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            nested = differences(default, value)
            if nested:
                changes[key] = nested
        elif value != default or key not in base:
            changes[key] = copy.deepcopy(value)
    return changes


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The top-level keys whose value differs between two whole documents, sorted."""
    return sorted(key for key in after.keys() | before.keys() if before.get(key) != after.get(key))


def lock_settings(user_id: uuid.UUID) -> AccountSettings:
    """The user's settings row, created if absent and locked for this transaction.

    Two concurrent PATCHes then merge one after the other instead of losing one.
    """
    db.execute(
        insert(AccountSettings)
        .values(user_id=user_id, document={})
        .on_conflict_do_nothing(index_elements=[AccountSettings.user_id])
    )
    row = db.scalars(
        select(AccountSettings)
        .where(AccountSettings.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return row


def save_settings(row: AccountSettings, settings: dict[str, Any]) -> None:
    """Store the whole, validated ``settings`` as its differences from the defaults."""
    row.document = differences(default_settings(), settings)
    db.flush()


def _trading(settings: dict[str, Any]) -> dict[str, float]:
    chosen = settings["trading_defaults"]
    return {key: float(chosen[key]) for key in TRADING_BOUNDS}


def trading_defaults(user_id: uuid.UUID) -> dict[str, float]:
    """What a new bot or backtest of ``user_id`` uses for capital, fee and slippage."""
    return _trading(effective_settings(user_id))


def bot_defaults(user_id: uuid.UUID) -> dict[str, Any]:
    """What a new bot of ``user_id`` gets for the fields its create leaves out: the trading
    defaults and ``default_bot_visibility`` (one read of the settings)."""
    settings = effective_settings(user_id)
    return {**_trading(settings), "visibility": str(settings["default_bot_visibility"])}
