"""Bodies of share links and of what a link shows (api/community/sharing.py)."""

from __future__ import annotations

import marshmallow as ma

from api.bots.card_schemas import BotCardOut
from api.schemas import (
    OutSchema,
    RiskOut,
    StrategyOut,
    StrictSchema,
    UtcDateTime,
    one_of,
    timeframe_enum,
)
from models.community.sharing import MAX_EXPIRY, MAX_LABEL
from models.community.tables import SHARE_SCOPES

SCOPE_HELP = (
    "view: the bot's card and its configuration (strategy, risk, symbol, timeframe, capital, "
    "fee, slippage), and it may be forked; view_performance: the card only (live performance)"
)
LINK_STATUSES = ("active", "expired", "revoked")


class ShareLinkIn(StrictSchema):
    """A new share link of my bot."""

    scope = ma.fields.String(required=True, **one_of(SHARE_SCOPES, description=SCOPE_HELP))
    expires_at = UtcDateTime(
        allow_none=True,
        load_default=None,
        metadata={
            "description": f"when the link stops working: in the future, at most "
            f"{MAX_EXPIRY.days} days ahead; null: until revoked"
        },
    )
    label = ma.fields.String(
        allow_none=True,
        load_default=None,
        validate=ma.validate.Length(min=1, max=MAX_LABEL),
        metadata={"description": "my note on whom the link is for; never shown to its viewers"},
    )


class ShareLinkOut(OutSchema):
    """One of my bot's share links (its token is never shown again)."""

    id = ma.fields.UUID()
    scope = ma.fields.String(**one_of(SHARE_SCOPES))
    label = ma.fields.String(allow_none=True)
    status = ma.fields.String(**one_of(LINK_STATUSES))
    expires_at = ma.fields.DateTime(allow_none=True)
    revoked_at = ma.fields.DateTime(allow_none=True)
    views = ma.fields.Integer(metadata={"description": "times the link was opened"})
    last_viewed_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class ShareLinkCreatedOut(ShareLinkOut):
    """A new share link, with its token: shown this once only (only a hash is kept)."""

    token = ma.fields.String(metadata={"description": "256 random bits, URL-safe; shown once"})
    url = ma.fields.String(
        metadata={"description": "the page to send: FRONTEND_URL/shared/{token}"}
    )
    api_path = ma.fields.String(metadata={"description": "/api/v1/shared/{token}"})


class ShareLinkQuery(StrictSchema):
    """Cursor paging of my bot's share links."""

    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(
        validate=ma.validate.Length(max=100),
        metadata={"description": "next_cursor of the previous page"},
    )


class ShareLinkListOut(OutSchema):
    """My bot's share links, newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    items = ma.fields.List(ma.fields.Nested(ShareLinkOut))
    next_cursor = ma.fields.String(allow_none=True)


class SharedConfigurationOut(OutSchema):
    """How a shared bot trades: what a `view` link shows besides the card."""

    symbol = ma.fields.String()
    timeframe = ma.fields.String(**timeframe_enum())
    strategy = ma.fields.Nested(StrategyOut)
    risk = ma.fields.Nested(RiskOut)
    initial_capital = ma.fields.Float()
    fee = ma.fields.Float()
    slippage_bps = ma.fields.Float()


class SharedBotOut(OutSchema):
    """A bot seen through a share link: its card, and its configuration if the scope allows."""

    scope = ma.fields.String(**one_of(SHARE_SCOPES, description=SCOPE_HELP))
    expires_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "when the link stops working; null: never"}
    )
    bot = ma.fields.Nested(BotCardOut)
    configuration = ma.fields.Nested(
        SharedConfigurationOut,
        allow_none=True,
        metadata={"description": "null unless the scope is `view`"},
    )
