"""The account settings document's schemas, generated from the event catalogue.

Three shapes of one document (models/people/preferences.py): ``…In`` for PUT (every key
at every level required), ``…Patch`` for PATCH (any subset, merged in) and ``…Out``
(the whole effective document). Every level refuses unknown keys; booleans must be JSON
booleans and numbers JSON numbers. Each event is a field of its own (the key is the
event's name, ``backtest.finished``), so a generated client sees typed fields.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of
from models.bots.bots import BOT_VISIBILITIES
from models.people.events import CHANNELS, EVENTS
from models.people.preferences import (
    DIGEST_MODES,
    PROFILE_VISIBILITIES,
    TRADING_BOUNDS,
)

CHANNEL_HELP = {
    "in_app": "Kept in my notifications (GET /api/v1/me/notifications)",
    "email": "Emailed at once",
    "webhook": "Sent to my webhooks subscribed to the event",
    "digest": "Batched into the daily digest email (while email_digest is daily)",
}


class StrictBoolean(ma.fields.Boolean):
    """A JSON ``true`` or ``false``; not ``"yes"``, ``1`` or ``"true"``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictNumber(ma.fields.Float):
    """A JSON number; not a string of digits, not a boolean."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        result: float = super()._deserialize(value, attr, data, **kwargs)
        return result


def _key(event: str) -> str:
    """The Python name of an event's field (its JSON key stays the event's name)."""
    return event.replace(".", "_")


if len({_key(e) for e in EVENTS}) != len(EVENTS):
    raise RuntimeError("two events share a field name")  # an event catalogue mistake


class _Partial:
    """Mixin: a PATCH shape (any subset; documents no defaults and no required fields)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "partial": True})


def _channels(base: type[ma.Schema], name: str, required: bool) -> type[ma.Schema]:
    body: dict[str, Any] = {
        "__doc__": "Which channels an event goes to.",
        **{
            channel: StrictBoolean(required=required, metadata={"description": help_})
            for channel, help_ in CHANNEL_HELP.items()
        },
    }
    if set(body) - {"__doc__"} != set(CHANNELS):
        raise RuntimeError("CHANNEL_HELP does not name every channel")
    return type(name, (base,), body)


def _notifications(base: type[ma.Schema], name: str, channels: type[ma.Schema]) -> type:
    """One field per event, keyed by the event's name."""
    required = not issubclass(base, OutSchema)
    fields = {
        _key(event): ma.fields.Nested(
            channels,
            required=required,
            data_key=event,
            metadata={
                "description": spec.description
                + (" (a security event: email cannot be turned off)" if spec.security else "")
            },
        )
        for event, spec in EVENTS.items()
    }

    @ma.pre_dump
    def by_field(self: ma.Schema, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {_key(event): value for event, value in data.items()}

    @ma.post_load
    def by_event(self: ma.Schema, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        return {event: data[_key(event)] for event in EVENTS if _key(event) in data}

    doc = "Per event, the channels it goes to."
    return type(
        name, (base,), {"__doc__": doc, **fields, "by_field": by_field, "by_event": by_event}
    )


def _trading(base: type[ma.Schema], name: str, required: bool) -> type[ma.Schema]:
    help_ = {
        "initial_capital": "Quote currency",
        "fee": "Commission per fill, a fraction (0.001 = 0.1 %)",
        "slippage_bps": "Basis points against each fill",
    }
    body: dict[str, Any] = {
        "__doc__": "Capital, fee and slippage for new bots and backtests that do not give them.",
        **{
            key: StrictNumber(
                required=required,
                validate=ma.validate.Range(min=low, max=high),
                metadata={"description": help_[key]},
            )
            for key, (low, high) in TRADING_BOUNDS.items()
        },
    }
    return type(name, (base,), body)


def _document(
    base: type[ma.Schema], name: str, notifications: type, trading: type, required: bool
) -> type[ma.Schema]:
    body: dict[str, Any] = {
        "__doc__": "My account settings (docs/accounts.md, 'Settings').",
        "notifications": ma.fields.Nested(notifications, required=required),
        "email_digest": ma.fields.String(
            required=required,
            **one_of(DIGEST_MODES, description="Send a daily digest of the events marked digest"),
        ),
        "trading_defaults": ma.fields.Nested(trading, required=required),
        "profile_visibility": ma.fields.String(
            required=required,
            **one_of(PROFILE_VISIBILITIES, description="private: only I see my profile"),
        ),
        "default_bot_visibility": ma.fields.String(
            required=required,
            **one_of(
                BOT_VISIBILITIES,
                description="For new bots, once bots have a visibility (issue 14)",
            ),
        ),
    }
    return type(name, (base,), body)


class _PartialStrict(_Partial, StrictSchema):
    pass


ChannelPrefsIn = _channels(StrictSchema, "ChannelPrefsIn", required=True)
ChannelPrefsPatch = _channels(_PartialStrict, "ChannelPrefsPatch", required=True)
ChannelPrefsOut = _channels(OutSchema, "ChannelPrefsOut", required=False)
NotificationPrefsIn = _notifications(StrictSchema, "NotificationPrefsIn", ChannelPrefsIn)
NotificationPrefsPatch = _notifications(_PartialStrict, "NotificationPrefsPatch", ChannelPrefsPatch)
NotificationPrefsOut = _notifications(OutSchema, "NotificationPrefsOut", ChannelPrefsOut)
TradingDefaultsIn = _trading(StrictSchema, "TradingDefaultsIn", required=True)
TradingDefaultsPatch = _trading(_PartialStrict, "TradingDefaultsPatch", required=True)
TradingDefaultsOut = _trading(OutSchema, "TradingDefaultsOut", required=False)
AccountSettingsIn = _document(
    StrictSchema, "AccountSettingsIn", NotificationPrefsIn, TradingDefaultsIn, required=True
)
AccountSettingsPatch = _document(
    _PartialStrict,
    "AccountSettingsPatch",
    NotificationPrefsPatch,
    TradingDefaultsPatch,
    required=True,
)
AccountSettingsOut = _document(
    OutSchema, "AccountSettingsOut", NotificationPrefsOut, TradingDefaultsOut, required=False
)
