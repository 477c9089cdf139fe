"""Leaderboard schemas: board queries, entries with their components, preview, status."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of, timeframe_enum
from models.leaderboards.eligibility import REASONS
from models.leaderboards.reads import MAX_LIMIT
from models.leaderboards.tables import BOARD_METRICS
from models.performance.tables import PERIODS

PERIOD_NAMES = {"7d": "D7", "30d": "D30", "90d": "D90", "all": "ALL"}


def _period(**metadata: Any) -> dict[str, Any]:
    return one_of(PERIODS, PERIOD_NAMES, **metadata)


class BoardQuery(StrictSchema):
    """One board (period x metric), optionally narrowed to an instrument and/or a family."""

    period = ma.fields.String(load_default="30d", **_period(description="Window of the board"))
    metric = ma.fields.String(
        load_default="sharpe",
        **one_of(BOARD_METRICS, description="return: total return over the period"),
    )
    instrument = ma.fields.String(
        validate=ma.validate.Length(min=1, max=32),
        metadata={"description": "Only bots trading this symbol (BTC-USD)"},
    )
    strategy = ma.fields.String(
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "Only this strategy family: a template key, or `rules`"},
    )
    cursor = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "next_cursor of the previous page (pinned to its generation)"},
    )
    limit = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=MAX_LIMIT))


class ComponentsOut(OutSchema):
    """The values an entry was ranked on (formula version 1; docs/leaderboards.md)."""

    formula_version = ma.fields.String()
    metrics_version = ma.fields.String()
    days_tracked = ma.fields.Float()
    trades = ma.fields.Integer()
    max_drawdown = ma.fields.Float(allow_none=True)
    total_return = ma.fields.Float(allow_none=True)
    sharpe = ma.fields.Float(allow_none=True)
    psr = ma.fields.Float(allow_none=True)
    calmar = ma.fields.Float(allow_none=True)
    as_of = ma.fields.String(metadata={"format": "date-time", "description": "Last bar included"})


class BoardBotOut(OutSchema):
    """A compact public summary of a ranked bot (never its parameters)."""

    id = ma.fields.UUID()
    name = ma.fields.String()
    symbol = ma.fields.String()
    timeframe = ma.fields.String(**timeframe_enum())
    strategy = ma.fields.String(metadata={"description": "Strategy family: template or `rules`"})


class BoardOwnerOut(OutSchema):
    """Who owns a ranked bot (never the email)."""

    username = ma.fields.String()
    display_name = ma.fields.String(allow_none=True)
    profile_url = ma.fields.String(
        allow_none=True, metadata={"description": "The public profile; null when it is private"}
    )


class EntryOut(OutSchema):
    """A place on a board."""

    rank = ma.fields.Integer(metadata={"description": "On this board (filtered rank if filtered)"})
    overall_rank = ma.fields.Integer(metadata={"description": "On the unfiltered board"})
    previous_rank = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "Unfiltered rank in the previous generation; null if new"},
    )
    rank_change = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "previous_rank - overall_rank (positive: moved up)"},
    )
    score = ma.fields.Float(metadata={"description": "The board's metric value"})
    bot = ma.fields.Nested(BoardBotOut)
    owner = ma.fields.Nested(BoardOwnerOut)
    components = ma.fields.Nested(ComponentsOut)


class BoardOut(OutSchema):
    """A page of one board of the active generation (or of the cursor's generation)."""

    generation_id = ma.fields.Integer(allow_none=True)
    generated_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When the generation went live"}
    )
    formula_version = ma.fields.String()
    period = ma.fields.String(**_period())
    metric = ma.fields.String(**one_of(BOARD_METRICS))
    instrument = ma.fields.String(allow_none=True)
    strategy = ma.fields.String(allow_none=True)
    entries = ma.fields.List(ma.fields.Nested(EntryOut))
    mine = ma.fields.Nested(
        EntryOut, allow_none=True, metadata={"description": "My best entry on this board"}
    )
    next_cursor = ma.fields.String(allow_none=True)


class PreviewBoardOut(OutSchema):
    """The top of one default board."""

    period = ma.fields.String(**_period())
    metric = ma.fields.String(**one_of(BOARD_METRICS))
    entries = ma.fields.List(ma.fields.Nested(EntryOut))


class PreviewOut(OutSchema):
    """The top 10 of every default board (period x metric), for public pages."""

    generation_id = ma.fields.Integer(allow_none=True)
    generated_at = ma.fields.DateTime(allow_none=True)
    formula_version = ma.fields.String()
    boards = ma.fields.List(ma.fields.Nested(PreviewBoardOut))


class RecomputeOut(OutSchema):
    """An on-demand recompute job: poll ``location`` until ``status`` is finished or failed."""

    job_id = ma.fields.String()
    status = ma.fields.String(
        metadata={"description": "queued, started, finished, failed, ... (RQ's job status)"}
    )
    generation_id = ma.fields.Integer(
        allow_none=True, metadata={"description": "The generation it built, once finished"}
    )
    activated = ma.fields.Boolean(allow_none=True)
    location = ma.fields.String()


class PlacingOut(OutSchema):
    """Where a bot is ranked on one board."""

    period = ma.fields.String(**_period())
    metric = ma.fields.String(**one_of(BOARD_METRICS))
    rank = ma.fields.Integer()
    instrument_rank = ma.fields.Integer()
    strategy_rank = ma.fields.Integer()
    score = ma.fields.Float()


class ExclusionDetailOut(OutSchema):
    """Figures behind the reasons (null where they do not apply)."""

    days_tracked = ma.fields.Float(allow_none=True)
    min_days = ma.fields.Integer(allow_none=True)
    trades = ma.fields.Integer(allow_none=True)
    min_trades = ma.fields.Integer(allow_none=True)
    duplicate_of = ma.fields.UUID(
        allow_none=True, metadata={"description": "The same configuration's bot that is ranked"}
    )


class LeaderboardStatusOut(OutSchema):
    """My bot in the active generation: its placings, or why it is on no board."""

    bot_id = ma.fields.UUID()
    generation_id = ma.fields.Integer(allow_none=True)
    generated_at = ma.fields.DateTime(allow_none=True)
    ranked = ma.fields.Boolean()
    placings = ma.fields.List(ma.fields.Nested(PlacingOut))
    reasons = ma.fields.List(ma.fields.String(**one_of(REASONS)))
    detail = ma.fields.Nested(ExclusionDetailOut)
