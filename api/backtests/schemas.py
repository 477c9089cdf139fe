"""Request and response bodies of the backtests area."""

from __future__ import annotations

import marshmallow as ma

from api.bots.schemas import MAX_CAPITAL, SYMBOL, RiskIn, StrategyIn
from api.pagination import page_schema
from api.schemas import (
    MetricsOut,
    OutSchema,
    PageQuery,
    RiskOut,
    StrategyOut,
    StrictSchema,
    Timestamp,
    TradeOut,
    one_of,
    timeframe_enum,
)
from models.backtests.backtests import BACKTEST_STATUSES


class BacktestIn(StrictSchema):
    """A bot to backtest (``bot_id``) or an inline spec; given fields override the bot's."""

    bot_id = ma.fields.UUID()
    symbol = ma.fields.String(validate=SYMBOL)
    timeframe = ma.fields.String(**timeframe_enum())
    strategy = ma.fields.Nested(StrategyIn)
    risk = ma.fields.Nested(RiskIn)
    start = Timestamp(required=True)
    end = Timestamp(required=True)
    # Left out: the bot's (with bot_id), else my settings' trading_defaults.
    initial_capital = ma.fields.Float(validate=ma.validate.Range(min=1, max=MAX_CAPITAL))
    fee = ma.fields.Float(validate=ma.validate.Range(min=0, max=0.05))
    slippage_bps = ma.fields.Float(validate=ma.validate.Range(min=0, max=500))


class BacktestSpecOut(OutSchema):
    """Everything a backtest runs with, frozen at creation (canonical, defaults filled in)."""

    symbol = ma.fields.String()
    instrument_id = ma.fields.Integer()
    timeframe = ma.fields.String(**timeframe_enum())
    start = ma.fields.Integer(metadata={"description": "epoch ms, included"})
    end = ma.fields.Integer(metadata={"description": "epoch ms, excluded"})
    strategy = ma.fields.Nested(StrategyOut)
    risk = ma.fields.Nested(RiskOut)
    initial_capital = ma.fields.Float()
    fee = ma.fields.Float()
    slippage_bps = ma.fields.Float()
    fractional = ma.fields.Boolean(metadata={"description": "the instrument trades fractions"})
    size_precision = ma.fields.Integer()
    bot_id = ma.fields.String(allow_none=True, metadata={"format": "uuid"})
    bot_name = ma.fields.String(allow_none=True)


class OpenPositionOut(OutSchema):
    """A position still open after a backtest's last bar, marked at its close (no exit fee)."""

    side = ma.fields.String(**one_of(["long", "short"]))
    units = ma.fields.Float()
    entry_bar = ma.fields.Integer()
    entry_ts = ma.fields.Integer(metadata={"description": "epoch ms"})
    entry_price = ma.fields.Float(metadata={"description": "average entry fill price"})
    fees = ma.fields.Float(metadata={"description": "entry commission"})
    mark_price = ma.fields.Float()
    unrealized_pnl = ma.fields.Float()
    unrealized_pnl_pct = ma.fields.Float()


class BacktestOut(OutSchema):
    """A backtest's spec, state, timings and (once it succeeded) its metrics."""

    id = ma.fields.UUID()
    bot_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String(**one_of(BACKTEST_STATUSES))
    progress = ma.fields.Integer(metadata={"description": "0-100"})
    cancel_requested = ma.fields.Boolean()
    spec = ma.fields.Nested(BacktestSpecOut)
    created_at = ma.fields.DateTime()
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    queued_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Waiting time"})
    run_ms = ma.fields.Integer(allow_none=True, metadata={"description": "Running time"})
    attempts = ma.fields.Integer()
    error = ma.fields.String(allow_none=True)
    bars = ma.fields.Integer(allow_none=True)
    metrics = ma.fields.Nested(MetricsOut, allow_none=True)
    open_position = ma.fields.Nested(OpenPositionOut, allow_none=True)
    engine_version = ma.fields.String(allow_none=True)
    metrics_version = ma.fields.String(allow_none=True)
    candles_fingerprint = ma.fields.String(allow_none=True)
    data_changed = ma.fields.Boolean(
        allow_none=True,
        metadata={"description": "True when the candles under this result changed since it ran"},
    )


class BacktestQuery(PageQuery):
    """Filter my backtests."""

    status = ma.fields.String(**one_of(BACKTEST_STATUSES))
    bot_id = ma.fields.UUID()


BacktestPageOut = page_schema(BacktestOut, "BacktestPage")
TradePageOut = page_schema(TradeOut, "TradePage")
