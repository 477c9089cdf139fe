"""The public card of a bot: what anyone who may see a bot reads of it (api/bots/cards.py).

Profiles and leaderboards embed the same card, so the schemas live apart from the
owner's bot bodies in api/bots/schemas.py.
"""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, one_of, timeframe_enum
from models.bots.bots import BOT_STATUSES, BOT_VISIBILITIES
from models.bots.runs import RUN_STATUSES
from models.performance.tables import PERIODS

PERIOD_NAMES = {"7d": "D7", "30d": "D30", "90d": "D90", "all": "ALL"}


class CardMetricsOut(OutSchema):
    """A live run's headline metrics over one period (its snapshot; docs/metrics.md)."""

    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    total_return = ma.fields.Float(allow_none=True, metadata={"description": "0.1 = +10 %"})
    sharpe = ma.fields.Float(allow_none=True, metadata={"description": "annualized"})
    psr = ma.fields.Float(
        allow_none=True, metadata={"description": "probabilistic Sharpe ratio against 0"}
    )
    max_drawdown = ma.fields.Float(metadata={"description": "a fraction, 0.2 = -20 %"})
    days_tracked = ma.fields.Float()
    trades = ma.fields.Integer()
    as_of = ma.fields.DateTime(metadata={"description": "open time of the last bar included"})


class CardTrackOut(OutSchema):
    """How long the bot's current (latest) live run has been tracked."""

    run_status = ma.fields.String(**one_of(RUN_STATUSES))
    started_at = ma.fields.DateTime()
    days_tracked = ma.fields.Float(
        allow_none=True,
        metadata={"description": "of the whole run (`all`); null until its first snapshot"},
    )


class CardOwnerOut(OutSchema):
    """The owner's public profile; display fields are null when the profile is private."""

    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    avatar_url = ma.fields.String(allow_none=True)
    profile_url = ma.fields.String(
        allow_none=True,
        metadata={"description": "`/api/v1/users/{username}`; null for a private profile"},
    )


class CardReconciliationOut(OutSchema):
    """The latest finished backtest-vs-live comparison of the current run."""

    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    diverged = ma.fields.Boolean()
    checked_at = ma.fields.DateTime()
    equity_max_abs_diff = ma.fields.Float(allow_none=True)


class CardLineageOut(OutSchema):
    """The bot a fork was made from, when the viewer may be shown it."""

    id = ma.fields.UUID()
    name = ma.fields.String()


class BotCardOut(OutSchema):
    """A bot's public card: what it trades, how it has done live, and whose it is.

    Never the strategy's parameters or rules, the risk options, the paper account or
    anything of the owner beyond the public profile.
    """

    id = ma.fields.UUID()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    symbol = ma.fields.String()
    timeframe = ma.fields.String(**timeframe_enum())
    strategy_family = ma.fields.String(
        metadata={"description": "the template's key, or `rules` for declarative rules"}
    )
    visibility = ma.fields.String(**one_of(BOT_VISIBILITIES))
    status = ma.fields.String(**one_of(BOT_STATUSES))
    metrics = ma.fields.List(
        ma.fields.Nested(CardMetricsOut),
        metadata={"description": "per period (7d, 30d, 90d, all) with a snapshot, in that order"},
    )
    track = ma.fields.Nested(
        CardTrackOut, allow_none=True, metadata={"description": "null if never started"}
    )
    owner = ma.fields.Nested(CardOwnerOut)
    reconciliation = ma.fields.Nested(
        CardReconciliationOut,
        allow_none=True,
        metadata={"description": "null until a reconciliation of the current run finished"},
    )
    stars = ma.fields.Integer(metadata={"description": "users who starred it"})
    forks = ma.fields.Integer(metadata={"description": "bots forked from it that still exist"})
    mirrors = ma.fields.Integer(metadata={"description": "bots mirroring its trades"})
    starred_by_me = ma.fields.Boolean(
        metadata={"description": "whether the caller starred it (false when not signed in)"}
    )
    forked_from = ma.fields.Nested(
        CardLineageOut,
        allow_none=True,
        metadata={
            "description": "its source when a fork and the source is mine or public; else null"
        },
    )
