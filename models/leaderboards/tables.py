"""Leaderboard tables: generations, their ranked entries and the bots each one left out.

A recompute writes a whole new generation while readers keep reading the active one;
one short transaction then makes the new generation active and the old one superseded,
so a reader sees one board or the other, never a mix (docs/leaderboards.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
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
    same order restricted to the bot's instrument or strategy family (a filtered board reads
    the overall order through the primary key and shows these). The figures the bot was
    ranked on are stored with it (:attr:`components`).

    The table is partitioned by generation: a recompute fills a table of its own, indexes
    it, and attaches it as one partition; pruning drops a whole partition
    (models/leaderboards/partitions.py). No foreign keys to bots, users or runs: every read
    joins them, and a check per row would cost more than writing the row.
    """

    __tablename__ = "leaderboard_entries"
    __table_args__ = (
        Index("ix_leaderboard_entries_bot", "generation_id", "bot_id"),
        {"postgresql_partition_by": "LIST (generation_id)"},
    )

    generation_id: Mapped[int] = mapped_column(
        ForeignKey("leaderboard_generations.id", ondelete="CASCADE"), primary_key=True
    )
    period: Mapped[str] = mapped_column(String(3), primary_key=True)
    metric: Mapped[str] = mapped_column(String(8), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    bot_id: Mapped[uuid.UUID] = mapped_column()
    owner_id: Mapped[uuid.UUID] = mapped_column()
    run_id: Mapped[uuid.UUID] = mapped_column()
    instrument: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(40))
    instrument_rank: Mapped[int] = mapped_column(Integer)
    strategy_rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    previous_rank: Mapped[int | None] = mapped_column(Integer)
    # The components: the snapshot figures the entry was ranked on, and the versions.
    formula_version: Mapped[str] = mapped_column(String(8))
    metrics_version: Mapped[str] = mapped_column(String(8))
    days_tracked: Mapped[float] = mapped_column(Float)
    trades: Mapped[int] = mapped_column(Integer)
    max_drawdown: Mapped[float | None] = mapped_column(Float)
    total_return: Mapped[float | None] = mapped_column(Float)
    sharpe: Mapped[float | None] = mapped_column(Float)
    psr: Mapped[float | None] = mapped_column(Float)
    calmar: Mapped[float | None] = mapped_column(Float)
    as_of_ts: Mapped[int] = mapped_column(BigInteger)

    @property
    def components(self) -> dict[str, Any]:
        """The public breakdown of the entry (the API's ``components``)."""
        return entry_components({name: getattr(self, name) for name in COMPONENT_COLUMNS})


# The stored columns an entry's components are made of.
COMPONENT_COLUMNS = (
    "formula_version",
    "metrics_version",
    "days_tracked",
    "trades",
    "max_drawdown",
    "total_return",
    "sharpe",
    "psr",
    "calmar",
    "as_of_ts",
)


def entry_components(row: Mapping[str, Any]) -> dict[str, Any]:
    """The components of an entry from its stored columns (a row or the mapped object)."""
    out = {name: row[name] for name in COMPONENT_COLUMNS if name != "as_of_ts"}
    out["as_of"] = datetime.fromtimestamp(row["as_of_ts"] / 1000, UTC).isoformat()
    return out


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
