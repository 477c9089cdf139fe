"""Request and response bodies of the backtests area."""

from __future__ import annotations

import marshmallow as ma

from api.bots.schemas import MAX_CAPITAL, SYMBOL, RiskIn, StrategyIn
from api.schemas import PageQuery, StrictSchema, Timestamp, TradeOut
from models.backtests.backtests import BACKTEST_STATUSES
from models.market.tables import TIMEFRAME_MS


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


class TradePageOut(ma.Schema):
    """A page of trades, in order."""

    items = ma.fields.List(ma.fields.Nested(TradeOut))
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    total = ma.fields.Integer()
