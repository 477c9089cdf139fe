"""Schemas of mirrors: the request that makes one, and the mirror it answers with."""

from __future__ import annotations

import marshmallow as ma

from api.bots.schemas import MAX_CAPITAL, BotWithRunOut
from api.schemas import StrictSchema, one_of
from models.community.mirror_pauses import REASONS


class MirrorIn(StrictSchema):
    """A mirror of a public live bot; every field is optional."""

    name = ma.fields.String(
        validate=ma.validate.Length(min=1, max=80),
        metadata={"description": "Default: the source's name followed by ' (mirror)'"},
    )
    initial_capital = ma.fields.Float(
        validate=ma.validate.Range(min=1, max=MAX_CAPITAL),
        metadata={"description": "The mirror's paper capital. Default: my trading_defaults"},
    )
    fee = ma.fields.Float(
        validate=ma.validate.Range(min=0, max=0.05),
        metadata={"description": "Default: my settings' trading_defaults"},
    )
    slippage_bps = ma.fields.Float(
        validate=ma.validate.Range(min=0, max=500),
        metadata={"description": "Default: my settings' trading_defaults"},
    )


class MirrorOut(BotWithRunOut):
    """My new mirror: a bot of mine, running, with the bot it follows."""

    source_bot_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "the bot it follows; null once that is deleted"}
    )
    paused_reason = ma.fields.String(
        allow_none=True,
        **one_of(
            REASONS,
            description="why it stopped following its source (it is then paused); null while "
            "it follows",
        ),
    )
