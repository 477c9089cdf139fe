"""Performance tables: what the aggregation job keeps per live run (docs/metrics.md).

A run's raw equity (``bot_equity``, one row per bar) is folded into one row per UTC day,
and the days into one snapshot per period, so serving a run's performance or ranking ten
thousand runs reads a few hundred rows, not millions. Reconciliation reports compare a run
with the backtest of the same window.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

# The periods a snapshot (and a leaderboard) covers: the last N UTC days, or the whole run.
PERIODS = ("7d", "30d", "90d", "all")
PERIOD_DAYS: dict[str, int | None] = {"7d": 7, "30d": 30, "90d": 90, "all": None}
_PERIOD_CHECK = "period IN ('7d','30d','90d','all')"


class RunDailyEquity(Base):
    """One UTC day of a run's equity marks (days by bar open time), and the trades it closed.

    ``max_drawdown`` is the deepest fall within the day below the day's own running peak
    (starting at its first mark); with the peak carried in from earlier days it gives the
    exact drawdown of any span of whole days (docs/metrics.md#live-performance).
    """

    __tablename__ = "run_daily_equity"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[int] = mapped_column(Integer, primary_key=True)  # days since 1970-01-01 UTC
    first_ts: Mapped[int] = mapped_column(BigInteger)
    last_ts: Mapped[int] = mapped_column(BigInteger)
    bars: Mapped[int] = mapped_column(Integer)
    open: Mapped[float] = mapped_column(Float)  # the first mark of the day
    close: Mapped[float] = mapped_column(Float)  # the last mark of the day
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    max_drawdown: Mapped[float] = mapped_column(Float)
    trades: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    wins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    gross_profit: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    gross_loss: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")


class RunRollupState(Base):
    """How far a run's rollups and snapshots have got: the incremental job's watermark."""

    __tablename__ = "run_rollup_state"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    rolled_ts: Mapped[int | None] = mapped_column(BigInteger)  # last equity ts in the rollups
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RunPerformance(Base):
    """A run's metrics over one period, as of its last rolled-up equity point."""

    __tablename__ = "run_performance"
    __table_args__ = (
        CheckConstraint(_PERIOD_CHECK, name="period_known"),
        # Every pass rewrites a changed run's rows in place; the free half of each page
        # lets the new versions stay on it (HOT updates: no index entries to write).
        {"postgresql_with": {"fillfactor": 50}},
    )

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(3), primary_key=True)
    metrics_version: Mapped[str] = mapped_column(String(8))
    as_of_ts: Mapped[int] = mapped_column(BigInteger)  # the last bar (open time) included
    start_ts: Mapped[int] = mapped_column(BigInteger)  # the first bar (open time) included
    days_tracked: Mapped[float] = mapped_column(Float)
    total_return: Mapped[float | None] = mapped_column(Float)
    annualized_return: Mapped[float | None] = mapped_column(Float)
    annualized_volatility: Mapped[float | None] = mapped_column(Float)
    sharpe: Mapped[float | None] = mapped_column(Float)
    sortino: Mapped[float | None] = mapped_column(Float)
    calmar: Mapped[float | None] = mapped_column(Float)
    psr: Mapped[float | None] = mapped_column(Float)
    max_drawdown: Mapped[float] = mapped_column(Float)
    trades: Mapped[int] = mapped_column(Integer)
    win_rate: Mapped[float | None] = mapped_column(Float)
    profit_factor: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class RunReconciliation(Base):
    """A live run compared with the backtest of the same window (docs/reconciliation.md)."""

    __tablename__ = "run_reconciliations"
    __table_args__ = (
        CheckConstraint(_PERIOD_CHECK, name="period_known"),
        CheckConstraint("status IN ('pending','done','failed')", name="status_known"),
    )

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(3), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    as_of_ts: Mapped[int | None] = mapped_column(BigInteger)  # the run's last candle compared
    job_id: Mapped[str | None] = mapped_column(String(80))
    matched: Mapped[int | None] = mapped_column(Integer)
    missing: Mapped[int | None] = mapped_column(Integer)  # in the backtest, not in the run
    extra: Mapped[int | None] = mapped_column(Integer)  # in the run, not in the backtest
    max_price_diff: Mapped[float | None] = mapped_column(Float)
    max_size_diff: Mapped[float | None] = mapped_column(Float)
    equity_max_abs_diff: Mapped[float | None] = mapped_column(Float)
    equity_mean_abs_diff: Mapped[float | None] = mapped_column(Float)
    equity_final_diff: Mapped[float | None] = mapped_column(Float)
    diverged: Mapped[bool | None] = mapped_column(Boolean)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
