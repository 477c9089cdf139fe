"""Schemas of the reconciliation endpoint: the period asked for, the report, the pending answer."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of
from engine.ledger import EXIT_REASONS
from models.performance.tables import PERIODS

PERIOD_NAMES = {"7d": "days_7", "30d": "days_30", "90d": "days_90", "all": "all"}


class ReconciliationQuery(StrictSchema):
    """Which span to compare: the last 7, 30 or 90 UTC days of the run, or all of it."""

    period = ma.fields.String(
        load_default="all",
        **one_of(PERIODS, PERIOD_NAMES, description="last N UTC days of the run, or all"),
    )


class ReconciledTradeOut(OutSchema):
    """A closed trade as the run or the backtest has it (times in epoch ms)."""

    side = ma.fields.String(**one_of(["long", "short"]))
    units = ma.fields.Float()
    entry_ts = ma.fields.Integer()
    entry_price = ma.fields.Float()
    exit_ts = ma.fields.Integer()
    exit_price = ma.fields.Float()
    fees = ma.fields.Float()
    pnl = ma.fields.Float()
    pnl_pct = ma.fields.Float()
    exit_reason = ma.fields.String(**one_of(EXIT_REASONS))


class TradeDifferenceOut(OutSchema):
    """A trade that differs: missing from the run, extra in it, or matched but changed.

    Differences are signed run minus backtest, null unless the trade is in both.
    """

    kind = ma.fields.String(**one_of(["missing", "extra", "changed"]))
    side = ma.fields.String(**one_of(["long", "short"]))
    entry_ts = ma.fields.Integer()
    exit_ts = ma.fields.Integer()
    run = ma.fields.Nested(ReconciledTradeOut, allow_none=True)
    backtest = ma.fields.Nested(ReconciledTradeOut, allow_none=True)
    entry_price_diff = ma.fields.Float(allow_none=True)
    exit_price_diff = ma.fields.Float(allow_none=True)
    units_diff = ma.fields.Float(allow_none=True)
    pnl_diff = ma.fields.Float(allow_none=True)


class ReconciliationWindowOut(OutSchema):
    """The bars compared: from ``start_ts`` (null for all) to the run's last candle."""

    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    start_ts = ma.fields.Integer(allow_none=True)
    end_ts = ma.fields.Integer(allow_none=True)


class ReplayOut(OutSchema):
    """What the replay read and ran: always from the run's first bar (docs/reconciliation.md)."""

    anchor_ts = ma.fields.Integer(metadata={"description": "first candle read (warm-up)"})
    trade_from_ts = ma.fields.Integer(metadata={"description": "the run's first bar"})
    epoch_bars = ma.fields.Integer()
    warmup = ma.fields.Integer()
    bars = ma.fields.Integer()
    candles_fingerprint = ma.fields.String()
    engine_version = ma.fields.String()
    final_state_equal = ma.fields.Boolean(
        metadata={"description": "the run's account equals the replay's after the last bar"}
    )


class TradeCountsOut(OutSchema):
    """Closed trades in the window, on each side."""

    run = ma.fields.Integer()
    backtest = ma.fields.Integer()


class EquityComparisonOut(OutSchema):
    """The equity bars compared and where the curves are furthest apart."""

    bars_compared = ma.fields.Integer()
    run_only_bars = ma.fields.Integer()
    backtest_only_bars = ma.fields.Integer()
    max_abs_diff_ts = ma.fields.Integer(allow_none=True)
    run_final = ma.fields.Float(allow_none=True)
    backtest_final = ma.fields.Float(allow_none=True)


class ThresholdOut(OutSchema):
    """The divergence threshold applied: a fraction of the initial capital, and in money."""

    fraction = ma.fields.Float()
    equity_abs = ma.fields.Float()


class ReconciliationReportOut(OutSchema):
    """The details of a reconciliation (at most 100 differing trades are listed)."""

    window = ma.fields.Nested(ReconciliationWindowOut)
    replay = ma.fields.Nested(ReplayOut)
    trades = ma.fields.Nested(TradeCountsOut)
    equity = ma.fields.Nested(EquityComparisonOut)
    threshold = ma.fields.Nested(ThresholdOut)
    differences_total = ma.fields.Integer()
    differences = ma.fields.List(ma.fields.Nested(TradeDifferenceOut))


class ReconciliationOut(OutSchema):
    """A finished reconciliation of the bot's live run (``failed``: figures null, see error)."""

    bot_id = ma.fields.UUID()
    run_id = ma.fields.UUID()
    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    status = ma.fields.String(**one_of(["done", "failed"]))
    as_of_ts = ma.fields.Integer(
        allow_none=True, metadata={"description": "the run's last candle compared"}
    )
    matched = ma.fields.Integer(allow_none=True)
    missing = ma.fields.Integer(
        allow_none=True, metadata={"description": "trades in the backtest, not in the run"}
    )
    extra = ma.fields.Integer(
        allow_none=True, metadata={"description": "trades in the run, not in the backtest"}
    )
    max_price_diff = ma.fields.Float(allow_none=True)
    max_size_diff = ma.fields.Float(allow_none=True)
    equity_max_abs_diff = ma.fields.Float(allow_none=True)
    equity_mean_abs_diff = ma.fields.Float(allow_none=True)
    equity_final_diff = ma.fields.Float(
        allow_none=True, metadata={"description": "run minus backtest at the last bar"}
    )
    diverged = ma.fields.Boolean(allow_none=True)
    report = ma.fields.Nested(ReconciliationReportOut, allow_none=True)
    error = ma.fields.String(allow_none=True)
    requested_at = ma.fields.DateTime()
    computed_at = ma.fields.DateTime(allow_none=True)


class ReconciliationPendingOut(OutSchema):
    """A reconciliation queued or running: poll ``location`` (the same URL) for the report."""

    bot_id = ma.fields.UUID()
    run_id = ma.fields.UUID()
    period = ma.fields.String(**one_of(PERIODS, PERIOD_NAMES))
    status = ma.fields.String(**one_of(["pending"]))
    as_of_ts = ma.fields.Integer(
        allow_none=True, metadata={"description": "the run's last candle, to be compared"}
    )
    job_id = ma.fields.String()
    location = ma.fields.String()
    requested_at = ma.fields.DateTime()
