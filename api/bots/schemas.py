"""Request and response bodies of the bots area."""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar

import marshmallow as ma

from api.bots.card_schemas import BotCardOut
from api.pagination import page_schema
from api.schemas import (
    DATE_TIME,
    EquityOut,
    EquityQuery,
    OutSchema,
    PageQuery,
    RiskOut,
    StrategyOut,
    StrictSchema,
    Timestamp,
    TradeOut,
    UtcDateTime,
    one_of,
    timeframe_enum,
)
from models.bots.bots import BOT_STATUSES, BOT_VISIBILITIES
from models.bots.execution_logs import LOG_LEVELS, MAX_LOG_PAGE
from models.bots.runs import RUN_STATUSES
from models.bots.schedules import DAYS, MAX_WINDOWS
from models.performance.tables import PERIODS

SYMBOL = ma.validate.Length(min=3, max=25)
MAX_CAPITAL = 1e9


class RiskIn(StrictSchema):
    """Exits as fractions of the entry price (0.05 = 5 %); sizing all-in or a fraction of equity."""

    stop_loss = ma.fields.Float(
        allow_none=True, validate=ma.validate.Range(min=0, max=1, min_inclusive=False)
    )
    take_profit = ma.fields.Float(
        allow_none=True, validate=ma.validate.Range(min=0, max=100, min_inclusive=False)
    )
    trailing_stop = ma.fields.Float(
        allow_none=True, validate=ma.validate.Range(min=0, max=1, min_inclusive=False)
    )
    # null (like an absent field on create) means the default; on PATCH it resets the option.
    direction = ma.fields.String(allow_none=True, **one_of(["long_only", "long_short"]))
    sizing = ma.fields.String(allow_none=True, **one_of(["all_in", "fraction"]))
    fraction = ma.fields.Float(
        allow_none=True, validate=ma.validate.Range(min=0, max=1, min_inclusive=False)
    )


class StrategyIn(StrictSchema):
    """A template with parameters, or declarative rules (checked by the engine)."""

    # Not empty, in the document too (api/openapi.py). "Exactly one of template and rules"
    # would be a oneOf of required lists, which client generators turn into anonymous
    # unions; the description says it instead.
    openapi: ClassVar[dict[str, Any]] = {"minProperties": 1}

    template = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    params = ma.fields.Dict(keys=ma.fields.String())
    rules = ma.fields.Dict(keys=ma.fields.String())

    @ma.validates_schema
    def _one_kind(self, data: dict[str, object], **_kwargs: object) -> None:
        if ("template" in data) == ("rules" in data):
            raise ma.ValidationError("Give either template (with params) or rules.", "template")


HHMM = ma.validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use HH:MM (UTC), 00:00 to 23:59.")


class WholeNested(ma.fields.Nested):
    """A nested object that is replaced whole, so a PATCH's ``partial`` does not reach into it."""

    def _deserialize(
        self, value: Any, attr: Any, data: Any, partial: Any = None, **kwargs: Any
    ) -> Any:
        return super()._deserialize(value, attr, data, partial=False, **kwargs)


class WindowIn(StrictSchema):
    """A daily run window in UTC; ``end`` before ``start`` wraps past midnight."""

    days = ma.fields.List(
        ma.fields.String(**one_of(DAYS)),
        validate=ma.validate.Length(
            min=1, error="Give at least one day, or leave days out for every day."
        ),
        metadata={"description": "the days a window starts on; every day if left out"},
    )
    start = ma.fields.String(required=True, validate=HHMM, metadata={"example": "09:00"})
    end = ma.fields.String(
        required=True,
        validate=HHMM,
        metadata={"description": "excluded; before start means the next day", "example": "17:30"},
    )

    @ma.validates_schema
    def _check(self, data: dict[str, Any], **_kwargs: object) -> None:
        if data["start"] == data["end"]:
            raise ma.ValidationError("end must differ from start.", "end")
        days = data.get("days") or []
        twice = sorted({day for day in days if days.count(day) > 1}, key=DAYS.index)
        if twice:
            raise ma.ValidationError(
                f"Each day at most once ({', '.join(twice)} repeated).", "days"
            )

    @ma.post_load
    def _normalise(self, data: dict[str, Any], **_kwargs: object) -> dict[str, Any]:
        days = data.get("days") or DAYS
        return {
            "days": [day for day in DAYS if day in days],
            "start": data["start"],
            "end": data["end"],
        }


class ScheduleIn(StrictSchema):
    """When a bot starts and stops, and the daily windows it may run in; all in UTC."""

    start_at = UtcDateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "start the bot then (once), if it is a draft or stopped"},
    )
    stop_at = UtcDateTime(
        allow_none=True,
        load_default=None,
        metadata={"description": "stop the bot then, if it is running or paused"},
    )
    windows = ma.fields.List(
        ma.fields.Nested(WindowIn),
        load_default=list,
        validate=ma.validate.Length(max=MAX_WINDOWS, error=f"At most {MAX_WINDOWS} windows."),
        metadata={"description": "outside every window a running bot is paused; none: no limit"},
    )

    @ma.validates_schema
    def _order(self, data: dict[str, Any], **_kwargs: object) -> None:
        start_at, stop_at = data.get("start_at"), data.get("stop_at")
        if start_at is not None and stop_at is not None and stop_at <= start_at:
            raise ma.ValidationError("stop_at must be after start_at.", "stop_at")

    @ma.post_load
    def _to_json(self, data: dict[str, Any], **_kwargs: object) -> dict[str, Any]:
        """The stored form: UTC ISO times, every key present."""
        return {
            "start_at": _iso(data["start_at"]),
            "stop_at": _iso(data["stop_at"]),
            "windows": data["windows"],
        }


def _iso(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


class BotIn(StrictSchema):
    """A new bot."""

    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=80))
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    symbol = ma.fields.String(required=True, validate=SYMBOL)
    timeframe = ma.fields.String(load_default="1h", **timeframe_enum())
    strategy = ma.fields.Nested(StrategyIn, required=True)
    risk = ma.fields.Nested(
        RiskIn,
        load_default=dict,
        allow_none=True,
        metadata={
            "description": "PATCH merges (RFC 7396): given options replace, absent ones stay, "
            "null resets one (or, for the whole object, all) to the default"
        },
    )
    # Left out, these come from my settings' trading_defaults (GET /api/v1/me/settings).
    initial_capital = ma.fields.Float(
        validate=ma.validate.Range(min=1, max=MAX_CAPITAL),
        metadata={"description": "Default: my settings' trading_defaults"},
    )
    fee = ma.fields.Float(
        validate=ma.validate.Range(min=0, max=0.05),
        metadata={"description": "Default: my settings' trading_defaults"},
    )
    slippage_bps = ma.fields.Float(
        validate=ma.validate.Range(min=0, max=500),
        metadata={"description": "Default: my settings' trading_defaults"},
    )
    schedule = WholeNested(
        ScheduleIn,
        allow_none=True,
        metadata={"description": "start at, stop at, daily windows (UTC); null for none"},
    )
    visibility = ma.fields.String(
        **one_of(
            BOT_VISIBILITIES,
            description="private: only me; unlisted: anyone with its id (once bot cards are "
            "shared); public: also my profile (and the leaderboards) while it runs. Default: "
            "my settings' default_bot_visibility",
        )
    )


class BotPatch(BotIn):
    """Any subset of a bot's fields (status changes only through lifecycle actions)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "partial": True})


class WindowOut(OutSchema):
    """A daily run window (UTC)."""

    days = ma.fields.List(ma.fields.String(**one_of(DAYS)))
    start = ma.fields.String()
    end = ma.fields.String()


class ScheduleOut(OutSchema):
    """A bot's schedule, times in UTC ISO 8601."""

    # Stored as ISO strings (ScheduleIn's post_load): sent as they are, typed as times.
    start_at = ma.fields.String(allow_none=True, metadata=DATE_TIME)
    stop_at = ma.fields.String(allow_none=True, metadata=DATE_TIME)
    windows = ma.fields.List(ma.fields.Nested(WindowOut))


class BotOut(OutSchema):
    """A bot as its owner sees it."""

    id = ma.fields.UUID()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    symbol = ma.fields.String()
    timeframe = ma.fields.String(**timeframe_enum())
    strategy = ma.fields.Nested(StrategyOut)
    risk = ma.fields.Nested(RiskOut)
    initial_capital = ma.fields.Float()
    fee = ma.fields.Float()
    slippage_bps = ma.fields.Float()
    status = ma.fields.String(**one_of(BOT_STATUSES))
    visibility = ma.fields.String(**one_of(BOT_VISIBILITIES))
    schedule = ma.fields.Nested(ScheduleOut, allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


# The owner's fields of GET /bots/{id}: null in a card served to anyone else.
OWNER_ONLY = (
    "strategy",
    "risk",
    "initial_capital",
    "fee",
    "slippage_bps",
    "schedule",
    "created_at",
    "updated_at",
    "last_error",
)


class ForkSourceOut(OutSchema):
    """The bot a fork was made from."""

    id = ma.fields.UUID()
    name = ma.fields.String()


class BotDetailOut(BotCardOut):
    """One bot: its public card, plus (for its owner only) every field of the bot.

    One schema for both readers, so generated clients get one typed model and no oneOf
    (docs/api.md, "Bot cards"): the owner-only fields are always present, null in
    the ``card`` view.
    """

    view = ma.fields.String(
        **one_of(
            ["owner", "card"],
            description="owner: the caller owns the bot, every field is set; card: someone "
            "else's shared bot, the owner-only fields are null",
        )
    )
    strategy = ma.fields.Nested(StrategyOut, allow_none=True)
    risk = ma.fields.Nested(RiskOut, allow_none=True)
    initial_capital = ma.fields.Float(allow_none=True)
    fee = ma.fields.Float(allow_none=True)
    slippage_bps = ma.fields.Float(allow_none=True)
    schedule = ma.fields.Nested(ScheduleOut, allow_none=True)
    created_at = ma.fields.DateTime(allow_none=True)
    updated_at = ma.fields.DateTime(allow_none=True)
    last_error = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "the latest run's error: why it moved to `error`, or the last failed "
            "tick's reason until a tick succeeds; null if none"
        },
    )
    forked_from = ma.fields.Nested(
        ForkSourceOut,
        allow_none=True,
        metadata={
            "description": "the bot this one was forked from, when the caller may see it (their "
            "own, or public); null otherwise, and for a bot that is not a fork"
        },
    )


class BotRunOut(OutSchema):
    """A live paper run: its status, times and paper account (the engine's broker state)."""

    id = ma.fields.UUID()
    status = ma.fields.String(**one_of(RUN_STATUSES))
    started_at = ma.fields.DateTime()
    paused_at = ma.fields.DateTime(allow_none=True)
    paused_by = ma.fields.String(
        allow_none=True,
        **one_of(["owner", "schedule"], description="who paused it; cleared on resume"),
    )
    stopped_at = ma.fields.DateTime(allow_none=True)
    initial_capital = ma.fields.Float()
    broker_state = ma.fields.Dict(
        metadata={"description": "cash, units (signed), entry price, pending order, ..."}
    )
    last_candle_ts = ma.fields.Integer(
        allow_none=True, metadata={"description": "ms of the last processed candle"}
    )
    consecutive_failures = ma.fields.Integer()
    error = ma.fields.String(allow_none=True)


class BotWithRunOut(BotOut):
    """A bot after a lifecycle action, with its current (latest) run."""

    run = ma.fields.Nested(BotRunOut, allow_none=True)


class BotQuery(PageQuery):
    """Filter my bots."""

    q = ma.fields.String(validate=ma.validate.Length(max=80))
    status = ma.fields.String(**one_of(BOT_STATUSES))


BotPageOut = page_schema(BotOut, "BotPage")


class BotTradeOut(TradeOut):
    """A closed trade of a live run, with its client order id (run, candle, n)."""

    client_order_id = ma.fields.String()


BotTradePageOut = page_schema(BotTradeOut, "BotTradePage")


class PositionOut(OutSchema):
    """The open position of a live run."""

    side = ma.fields.String(**one_of(["long", "short"]))
    units = ma.fields.Float()
    entry_price = ma.fields.Float()
    entry_time = ma.fields.DateTime()


PERIOD_NAMES = {"7d": "D7", "30d": "D30", "90d": "D90", "all": "ALL"}


class PerformanceQuery(StrictSchema):
    """Which period of the run's performance: its last 7, 30 or 90 UTC days, or all of it."""

    period = ma.fields.String(load_default="all", **one_of(PERIODS, PERIOD_NAMES))


def _live(description: str, *, nullable: bool = True, integer: bool = False) -> Any:
    field = ma.fields.Integer if integer else ma.fields.Float
    return field(allow_none=nullable, metadata={"description": description})


class LiveMetricsOut(OutSchema):
    """A live run's stored snapshot over one period (docs/metrics.md, Live performance).

    The shared metric set's definitions, over the period's window: its starting equity
    is the last close before the window (or the initial capital); fractions are plain
    ratios; null where undefined. ``end_ts`` and ``days`` repeat ``as_of_ts`` and
    ``days_tracked`` under the per-bar set's names.
    """

    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    metrics_version = ma.fields.String()
    start_ts = _live("Open time of the window's first bar, epoch ms", nullable=False, integer=True)
    as_of_ts = _live("Open time of the last bar included, epoch ms", nullable=False, integer=True)
    end_ts = _live("Same as as_of_ts", nullable=False, integer=True)
    days_tracked = _live("Span D in days, first open to last close", nullable=False)
    days = _live("Same as days_tracked", nullable=False)
    total_return = _live("last close / starting equity - 1")
    annualized_return = _live("(1 + total_return)^(365 / D) - 1; null when D < 2")
    annualized_volatility = _live("Sample stdev of daily returns x sqrt(365)")
    sharpe = _live("mean / stdev of daily returns x sqrt(365), risk-free rate 0")
    sortino = _live("mean daily return / downside deviation x sqrt(365), target 0")
    calmar = _live("annualized_return / max_drawdown")
    psr = _live("Probabilistic Sharpe ratio of the daily returns against 0, in [0, 1]")
    max_drawdown = _live("Largest fall from a running peak, a fraction", nullable=False)
    trades = _live("Trades closed in the window", nullable=False, integer=True)
    win_rate = _live("Trades with pnl > 0 / trades")
    profit_factor = _live("Sum of gains / |sum of losses|; null without a losing trade")
    computed_at = ma.fields.String(
        metadata={**DATE_TIME, "description": "when the snapshot was computed"}
    )


class BotPerformanceOut(OutSchema):
    """A live run's stored performance snapshot for a period, plus its account.

    Nulls without a run; ``metrics`` and ``as_of`` are null until the run has equity.
    """

    run_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String(allow_none=True, **one_of(RUN_STATUSES, description="the run's"))
    started_at = ma.fields.DateTime(allow_none=True)
    last_candle_ts = ma.fields.Integer(allow_none=True)
    last_tick_time = ma.fields.DateTime(allow_none=True)
    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    as_of = ma.fields.DateTime(
        allow_none=True, metadata={"description": "open time of the last bar in the snapshot"}
    )
    metrics = ma.fields.Nested(LiveMetricsOut, allow_none=True)
    metrics_version = ma.fields.String(metadata={"description": "version of the metric set"})
    position = ma.fields.Nested(PositionOut, allow_none=True)
    cash = ma.fields.Float(allow_none=True)
    equity = ma.fields.Float(allow_none=True, metadata={"description": "at the last point"})
    mark_price = ma.fields.Float(
        allow_none=True, metadata={"description": "close of the last equity point's candle"}
    )
    unrealized_pnl = ma.fields.Float(
        allow_none=True, metadata={"description": "units x (mark_price - entry_price)"}
    )


class BotEquityQuery(EquityQuery):
    """``resolution=day`` pages through the run's daily rollups instead of its bars."""

    resolution = ma.fields.String(load_default="bar", **one_of(["bar", "day"]))

    @ma.validates_schema
    def _days_by_cursor(self, data: dict[str, object], **_kwargs: object) -> None:
        if data.get("resolution") == "day" and "points" in data:
            raise ma.ValidationError(
                "resolution=day pages by cursor and limit; points is for bars.", "points"
            )


class DailyEquityOut(OutSchema):
    """One UTC day of a run's equity marks (days by bar open time)."""

    day_ts = ma.fields.Integer(metadata={"description": "the UTC midnight opening the day, ms"})
    first_ts = ma.fields.Integer(metadata={"description": "open time of its first bar, ms"})
    last_ts = ma.fields.Integer(metadata={"description": "open time of its last bar, ms"})
    bars = ma.fields.Integer()
    open = ma.fields.Float(metadata={"description": "equity at its first bar's close"})
    high = ma.fields.Float()
    low = ma.fields.Float()
    close = ma.fields.Float(metadata={"description": "equity at its last bar's close"})
    max_drawdown = ma.fields.Float(metadata={"description": "below the day's own running peak"})
    trades = ma.fields.Integer(metadata={"description": "trades closed that day"})


class BotEquityOut(EquityOut):
    """Per bar (``rows``), or per day: ``rows`` are ``[last_ts, close]`` and ``days`` the rows."""

    resolution = ma.fields.String(**one_of(["bar", "day"]))
    days = ma.fields.List(
        ma.fields.Nested(DailyEquityOut),
        allow_none=True,
        metadata={"description": "the day rows with resolution=day, else null"},
    )


class BotLogQuery(StrictSchema):
    """Filter and page a bot's execution logs (newest first)."""

    level = ma.fields.String(
        **one_of(LOG_LEVELS, description="this level and the more severe ones")
    )
    event = ma.fields.String(validate=ma.validate.Length(min=1, max=40))
    since = Timestamp(metadata={"description": "entries written at or after this time"})
    cursor = ma.fields.Integer(
        # Log ids are bigints: a larger cursor would overflow in Postgres (a 500).
        validate=ma.validate.Range(min=1, max=2**63 - 1),
        metadata={"description": "next_cursor of the last page"},
    )
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=MAX_LOG_PAGE))


class BotLogOut(OutSchema):
    """One execution log entry."""

    id = ma.fields.Integer()
    time = ma.fields.DateTime(attribute="ts")
    level = ma.fields.String(**one_of(LOG_LEVELS))
    event = ma.fields.String()
    data = ma.fields.Dict(metadata={"description": "the event's details (free-form)"})
    candle_ts = ma.fields.Integer(allow_none=True, metadata={"description": "ms of its candle"})


class BotLogPageOut(OutSchema):
    """A page of execution logs, newest first; ``next_cursor`` is null on the last page."""

    rows = ma.fields.List(ma.fields.Nested(BotLogOut))
    next_cursor = ma.fields.Integer(allow_none=True)
