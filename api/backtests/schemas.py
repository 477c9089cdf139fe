"""Request and response bodies of the backtests area."""

from __future__ import annotations

import marshmallow as ma

from api.bots.schemas import MAX_CAPITAL, SYMBOL, RiskIn, StrategyIn
from api.schemas import PageQuery, StrictSchema, Timestamp
from models.backtests import BACKTEST_STATUSES
from models.market import TIMEFRAME_MS

MAX_EQUITY_PAGE = 5000


class BacktestIn(StrictSchema):
    """A bot to backtest (``bot_id``) or an inline spec; given fields override the bot's."""

    bot_id = ma.fields.UUID()
    symbol = ma.fields.String(validate=SYMBOL)
    timeframe = ma.fields.String(validate=ma.validate.OneOf(list(TIMEFRAME_MS)))
    strategy = ma.fields.Nested(StrategyIn)
    risk = ma.fields.Nested(RiskIn)
    start = Timestamp(required=True)
    end = Timestamp(required=True)
    initial_capital = ma.fields.Float(validate=ma.validate.Range(min=1, max=MAX_CAPITAL))
    fee = ma.fields.Float(validate=ma.validate.Range(min=0, max=0.05))
    slippage_bps = ma.fields.Float(validate=ma.validate.Range(min=0, max=500))


class BacktestOut(ma.Schema):
    """A backtest's spec, state, timings and (once it succeeded) its metrics."""

    id = ma.fields.UUID()
    bot_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String()
    progress = ma.fields.Integer(metadata={"description": "0-100"})
    cancel_requested = ma.fields.Boolean()
    spec = ma.fields.Dict(metadata={"description": "Everything the run used, frozen at creation"})
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    queued_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Waiting time"})
    run_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Running time"})
    attempts = ma.fields.Integer()
    error = ma.fields.String(allow_none=True)
    bars = ma.fields.Integer(allow_none=True)
    metrics = ma.fields.Dict(allow_none=True)
    open_position = ma.fields.Dict(allow_none=True)
    engine_version = ma.fields.String(allow_none=True)
    metrics_version = ma.fields.String(allow_none=True)
    candles_fingerprint = ma.fields.String(allow_none=True)
    data_changed = ma.fields.Boolean(
        allow_none=True,
        metadata={"description": "True when the candles under this result changed since it ran"},
    )


class BacktestQuery(PageQuery):
    """Filter my backtests."""

    status = ma.fields.String(validate=ma.validate.OneOf(BACKTEST_STATUSES))
    bot_id = ma.fields.UUID()


class BacktestPageOut(ma.Schema):
    """A page of backtests."""

    items = ma.fields.List(ma.fields.Nested(BacktestOut))
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    total = ma.fields.Integer()


class TradeOut(ma.Schema):
    """A closed trade."""

    seq = ma.fields.Integer()
    side = ma.fields.String()
    units = ma.fields.Float()
    entry_time = ma.fields.DateTime()
    entry_price = ma.fields.Float()
    exit_time = ma.fields.DateTime()
    exit_price = ma.fields.Float()
    fees = ma.fields.Float()
    pnl = ma.fields.Float()
    pnl_pct = ma.fields.Float()
    exit_reason = ma.fields.String()


class TradePageOut(ma.Schema):
    """A page of trades, in order."""

    items = ma.fields.List(ma.fields.Nested(TradeOut))
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    total = ma.fields.Integer()


class EquityQuery(StrictSchema):
    """``points`` for a chart (downsampled), or ``cursor``/``limit`` to page through every bar."""

    points = ma.fields.Integer(validate=ma.validate.Range(min=2, max=5000))
    cursor = Timestamp(metadata={"description": "next_cursor of the previous page"})
    limit = ma.fields.Integer(
        load_default=1000, validate=ma.validate.Range(min=1, max=MAX_EQUITY_PAGE)
    )

    @ma.validates_schema
    def _one_mode(self, data: dict[str, object], **_kwargs: object) -> None:
        if "points" in data and "cursor" in data:
            raise ma.ValidationError("Use points (a chart) or cursor (paging), not both.", "points")


class EquityOut(ma.Schema):
    """Rows are ``[ts_ms, equity]`` at bar closes, oldest first."""

    rows = ma.fields.List(ma.fields.List(ma.fields.Float()))
    total = ma.fields.Integer(metadata={"description": "Bars in the full curve"})
    next_cursor = ma.fields.Integer(allow_none=True)
