"""Backtests: the frozen spec, status and progress, and the results a job writes.

A backtest keeps a snapshot of everything it ran with (``spec``), so editing or
deleting the bot never changes a result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Select,
    SmallInteger,
    String,
    Text,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.bots.bots import Bot
from models.bots.strategy_specs import merge_risk, validate_risk, validate_strategy
from models.db import Base
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity.quotas import enforce_quota
from models.market.instruments import get_instrument
from models.market.tables import TIMEFRAME_MS
from models.trades import TradeColumns

BACKTEST_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE_BACKTEST_STATUSES = ("queued", "running")
FINISHED_BACKTEST_STATUSES = ("succeeded", "failed", "cancelled")


class Backtest(Base):
    """One backtest run: its frozen spec, its progress and, once done, its metrics."""

    __tablename__ = "backtests"
    __table_args__ = (
        Index("ix_backtests_owner_id_created_at", "owner_id", "created_at"),
        Index("ix_backtests_bot_id", "bot_id"),
        CheckConstraint(
            "status IN ('queued','running','succeeded','failed','cancelled')", name="status_known"
        ),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    bot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bots.id", ondelete="SET NULL"))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    progress: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    bars: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    open_position: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    engine_version: Mapped[str | None] = mapped_column(String(16))
    metrics_version: Mapped[str | None] = mapped_column(String(16))
    candles_fingerprint: Mapped[str | None] = mapped_column(String(64))


class BacktestTrade(TradeColumns, Base):
    """A closed trade of a backtest, numbered in order."""

    __tablename__ = "backtest_trades"

    backtest_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("backtests.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)


class BacktestEquity(Base):
    """Mark-to-market equity at one bar's close."""

    __tablename__ = "backtest_equity"

    backtest_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("backtests.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    equity: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class Limits:
    """Size limits checked before a backtest is queued (from settings)."""

    max_bars: int
    max_days: int
    quota: int


def build_spec(
    fields: dict[str, Any],
    bot: Bot | None,
    now_ms: int,
    limits: Limits,
    cost_defaults: dict[str, float],
) -> dict[str, Any]:
    """The frozen spec of a backtest: the bot's settings, overridden by ``fields``.

    Capital, fee and slippage that neither ``fields`` nor the bot give come from
    ``cost_defaults``: the owner's settings' trading defaults
    (models/people/preferences.py ``trading_defaults``).

    Raises :class:`Invalid` (422) naming the offending field for an unknown symbol, a
    timeframe the instrument lacks, an inverted, future or oversized range.
    """
    base: dict[str, Any] = {}
    if bot is not None:
        base = {
            "symbol": bot.instrument.symbol,
            "timeframe": bot.timeframe,
            "strategy": bot.strategy,
            "risk": bot.risk,
            "initial_capital": bot.initial_capital,
            "fee": bot.fee,
            "slippage_bps": bot.slippage_bps,
        }
    given = {k: v for k, v in fields.items() if v is not None and k != "bot_id"}
    merged = {**cost_defaults, **base, **given}
    missing = [k for k in ("symbol", "strategy") if k not in merged]
    if missing:
        raise Invalid(
            "Give a bot_id, or an inline spec with symbol and strategy.",
            {"json": {k: ["Missing data for required field."] for k in missing}},
        )
    try:
        instrument = get_instrument(merged["symbol"])
    except NotFound as exc:
        raise Invalid(exc.message, {"json": {"symbol": [exc.message]}}) from exc
    timeframe = merged.get("timeframe", "1h")
    if timeframe not in instrument.timeframes():
        message = f"{instrument.symbol} has candles in {', '.join(instrument.timeframes())}."
        raise Invalid(message, {"json": {"timeframe": [message]}})
    step = TIMEFRAME_MS[timeframe]
    start, end = int(merged["start"]), min(int(merged["end"]), now_ms)
    if start >= end:
        message = "start must be before end, and before now."
        raise Invalid(message, {"json": {"start": [message]}})
    if end - start > limits.max_days * 86_400_000:
        message = f"A backtest spans at most {limits.max_days} days."
        raise Invalid(message, {"json": {"end": [message]}})
    bars = (end - start) // step
    if bars > limits.max_bars:
        message = (
            f"That is {bars:,} {timeframe} bars; at most {limits.max_bars:,} per backtest "
            "(shorten the range or use a larger timeframe)."
        )
        raise Invalid(message, {"json": {"end": [message]}})
    return {
        "symbol": instrument.symbol,
        "instrument_id": instrument.id,
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "strategy": validate_strategy(merged["strategy"]),
        # Given risk options merge over the bot's (RFC 7396), as a PATCH of the bot does.
        "risk": validate_risk(merge_risk(base.get("risk"), merged.get("risk"))),
        "initial_capital": float(merged["initial_capital"]),
        "fee": float(merged["fee"]),
        "slippage_bps": float(merged["slippage_bps"]),
        "fractional": instrument.fractional,
        "size_precision": instrument.size_precision,
        "bot_id": str(bot.id) if bot is not None else None,
        "bot_name": bot.name if bot is not None else None,
    }


def create_backtest(owner_id: uuid.UUID, spec: dict[str, Any], quota: int) -> Backtest:
    """Add a ``queued`` backtest unless the owner already has ``quota`` queued or running.

    The owner's row is locked first, so two concurrent requests cannot both squeeze
    under the quota.
    """
    enforce_quota(
        owner_id,
        Backtest,
        ACTIVE_BACKTEST_STATUSES,
        quota,
        what="backtest(s) queued or running",
        advice="wait for one to finish or cancel one.",
    )
    bot_id = uuid.UUID(spec["bot_id"]) if spec.get("bot_id") else None
    backtest = Backtest(owner_id=owner_id, bot_id=bot_id, spec=spec, status="queued")
    db.add(backtest)
    db.flush()
    return backtest


def get_owned_backtest(owner_id: uuid.UUID, backtest_id: uuid.UUID) -> Backtest:
    """The caller's backtest; anyone else's is :class:`NotFound`."""
    backtest = db.get(Backtest, backtest_id)
    if backtest is None or backtest.owner_id != owner_id:
        raise NotFound("No backtest with that id.")
    return backtest


def search_backtests(
    owner_id: uuid.UUID, status: str | None, bot_id: uuid.UUID | None
) -> Select[Backtest]:
    """The owner's backtests, newest first, filtered by status and bot."""
    stmt = (
        select(Backtest)
        .where(Backtest.owner_id == owner_id)
        .order_by(Backtest.created_at.desc(), Backtest.id)
    )
    if status:
        stmt = stmt.where(Backtest.status == status)
    if bot_id:
        stmt = stmt.where(Backtest.bot_id == bot_id)
    return stmt


def request_cancel(backtest: Backtest, now: datetime) -> Backtest:
    """Cancel: a queued backtest is cancelled at once; a running one at its next checkpoint."""
    if backtest.status in FINISHED_BACKTEST_STATUSES:
        raise Conflict(f"The backtest has already {backtest.status}.")
    backtest.cancel_requested = True
    if backtest.status == "queued":
        backtest.status = "cancelled"
        backtest.finished_at = now
    return backtest


def stale_backtests(before: datetime) -> list[Backtest]:
    """Backtests to check against their RQ job: queued ones created before ``before``, and
    running ones of any age, that nobody asked to cancel.

    A queued backtest younger than ``before`` may still be on its way onto the queue; a
    running one has a started job, so its worker's heartbeats tell whether it is alive.
    """
    return list(
        db.scalars(
            select(Backtest)
            .where(
                or_(
                    and_(Backtest.status == "queued", Backtest.created_at < before),
                    Backtest.status == "running",
                ),
                Backtest.cancel_requested.is_(False),
            )
            .order_by(Backtest.created_at)
            .limit(500)
            .with_for_update(skip_locked=True)
        )
    )
