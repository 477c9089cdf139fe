"""Leaderboard tables: generations, their ranked entries and the bots each one left out.

A recompute writes a whole new generation while readers keep reading the active one;
one short transaction then makes the new generation active and the old one superseded,
so a reader sees one board or the other, never a mix (docs/leaderboards.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

GENERATION_STATUSES = ("building", "active", "superseded", "failed")
BOARD_METRICS = ("return", "sharpe", "psr", "calmar")


class LeaderboardGeneration(Base):
    """One complete computation of every board; exactly one is ``active`` at a time."""

    __tablename__ = "leaderboard_generations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('building','active','superseded','failed')", name="status_known"
        ),
        # At most one active generation: the swap demotes the old one in the same transaction.
        Index(
            "uq_leaderboard_generations_active",
            "status",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(12), default="building", server_default="building")
    formula_version: Mapped[str] = mapped_column(String(8))
    bots_considered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    job_id: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LeaderboardEntry(Base):
    """A bot's place on one board (period x metric) of one generation.

    ``rank`` is over every eligible bot; ``instrument_rank`` and ``strategy_rank`` are the
    same order restricted to the bot's instrument or strategy family, so the filtered boards
    page by index without re-ranking at read time.
    """

    __tablename__ = "leaderboard_entries"
    __table_args__ = (
        Index(
            "ix_leaderboard_entries_instrument",
            "generation_id",
            "period",
            "metric",
            "instrument",
            "instrument_rank",
        ),
        Index(
            "ix_leaderboard_entries_strategy",
            "generation_id",
            "period",
            "metric",
            "strategy",
            "strategy_rank",
        ),
        Index("ix_leaderboard_entries_bot", "generation_id", "bot_id"),
        Index("ix_leaderboard_entries_owner", "generation_id", "owner_id"),
    )

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("leaderboard_generations.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(3), primary_key=True)
    metric: Mapped[str] = mapped_column(String(8), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bot_runs.id", ondelete="CASCADE"))
    instrument: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(40))
    instrument_rank: Mapped[int] = mapped_column(Integer)
    strategy_rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    components: Mapped[dict[str, Any]] = mapped_column(JSONB)
    previous_rank: Mapped[int | None] = mapped_column(Integer)


class LeaderboardExclusion(Base):
    """Why a public live bot is on no board of a generation (too few days, a duplicate, ...)."""

    __tablename__ = "leaderboard_exclusions"

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("leaderboard_generations.id", ondelete="CASCADE"), primary_key=True
    )
    bot_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    reasons: Mapped[list[str]] = mapped_column(JSONB)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
