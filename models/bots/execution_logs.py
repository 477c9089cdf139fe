"""Structured execution logs of live runs: what a tick or a lifecycle action did, per bot.

Rows are written in the same transaction (or savepoint) as the change they describe, so
a rolled-back tick leaves no log behind and a skipped tick writes none. See
docs/execution.md.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    and_,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base
from models.db import session as db
from models.retention import purge_rows

LOG_LEVELS = ("info", "warning", "error")
MAX_LOG_PAGE = 500


class ExecutionLog(Base):
    """One event of a live run: a tick, a closed trade, a failure or a lifecycle action."""

    __tablename__ = "execution_logs"
    __table_args__ = (
        CheckConstraint("level IN ('info','warning','error')", name="level_known"),
        Index("ix_execution_logs_bot_id_id", "bot_id", "id"),
        # Rows arrive in time order, so a BRIN index (a few pages) finds old ones to purge.
        Index("ix_execution_logs_ts_brin", "ts", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bot_runs.id", ondelete="CASCADE"))
    bot_id: Mapped[uuid.UUID]
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    level: Mapped[str] = mapped_column(String(8))
    event: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    candle_ts: Mapped[int | None] = mapped_column(BigInteger)


def write_log(
    run_id: uuid.UUID,
    bot_id: uuid.UUID,
    level: str,
    event: str,
    *,
    data: dict[str, Any] | None = None,
    candle_ts: int | None = None,
) -> None:
    """Insert one log entry for a run (ticks write theirs in bulk: ``models.bots.ticks``)."""
    row = {
        "run_id": run_id,
        "bot_id": bot_id,
        "level": level,
        "event": event,
        "data": data or {},
        "candle_ts": candle_ts,
    }
    db.execute(insert(ExecutionLog), [row])


def purge_tick_entries(cutoff: datetime, batch: int, max_batches: int) -> int:
    """Delete ``tick`` entries written before ``cutoff`` (see :func:`purge_rows`).

    Trades, failures and lifecycle entries are kept for the life of their run.
    """
    expired = and_(ExecutionLog.ts < cutoff, ExecutionLog.event == "tick")
    return purge_rows(ExecutionLog, expired, batch, max_batches)


def levels_from(level: str | None) -> tuple[str, ...]:
    """The levels a ``level`` filter shows: that level and every more severe one."""
    if level is None:
        return LOG_LEVELS
    return LOG_LEVELS[LOG_LEVELS.index(level) :]


def logs_page(
    bot_id: uuid.UUID,
    *,
    level: str | None = None,
    event: str | None = None,
    since_ms: int | None = None,
    cursor: int | None = None,
    limit: int = 100,
) -> list[ExecutionLog]:
    """A bot's log entries, newest first, with ids below ``cursor`` (keyset paging).

    ``level`` shows that level and the more severe ones; ``since_ms`` keeps entries
    written at or after that time.
    """
    query = select(ExecutionLog).where(ExecutionLog.bot_id == bot_id)
    if level is not None:
        query = query.where(ExecutionLog.level.in_(levels_from(level)))
    if event is not None:
        query = query.where(ExecutionLog.event == event)
    if since_ms is not None:
        query = query.where(ExecutionLog.ts >= datetime.fromtimestamp(since_ms / 1000, UTC))
    if cursor is not None:
        query = query.where(ExecutionLog.id < cursor)
    return list(db.scalars(query.order_by(ExecutionLog.id.desc()).limit(limit)))
