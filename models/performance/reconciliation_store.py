"""Reading and writing reconciliation reports (``run_reconciliations``, one per run and period).

A row is ``pending`` from a request until its job writes it ``done`` (or ``failed``). A
pending row keeps the figures of the previous report, so a card that shows ``diverged``
shows the last known answer meanwhile. A report is current when it was computed as of the
run's last candle (``as_of_ts == bot_runs.last_candle_ts``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert

from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
from models.bots.runs import BotRun
from models.db import session as db
from models.performance.tables import PERIODS, RunReconciliation

FIGURES = (
    "as_of_ts",
    "matched",
    "missing",
    "extra",
    "max_price_diff",
    "max_size_diff",
    "equity_max_abs_diff",
    "equity_mean_abs_diff",
    "equity_final_diff",
    "diverged",
    "report",
)


def stored_report(run_id: uuid.UUID, period: str) -> RunReconciliation | None:
    """The run's report for ``period``, whatever its status, read afresh."""
    return db.scalar(
        select(RunReconciliation)
        .where(RunReconciliation.run_id == run_id, RunReconciliation.period == period)
        .execution_options(populate_existing=True)
    )


def is_current(row: RunReconciliation | None, run: BotRun) -> bool:
    """True when ``row`` is a finished report (done or failed) as of the run's last candle."""
    return (
        row is not None and row.status in ("done", "failed") and row.as_of_ts == run.last_candle_ts
    )


def mark_pending(run_id: uuid.UUID, period: str, job_id: str, now: datetime) -> datetime:
    """Record that a reconciliation was asked for; returns when it was first asked for.

    A report already pending keeps its ``requested_at``; figures of an older report stay.
    """
    stmt = insert(RunReconciliation).values(
        run_id=run_id, period=period, status="pending", job_id=job_id, requested_at=now
    )
    db.execute(
        stmt.on_conflict_do_update(
            index_elements=["run_id", "period"],
            set_={"status": "pending", "job_id": job_id, "requested_at": now},
            where=RunReconciliation.status != "pending",
        )
    )
    requested = db.scalar(
        select(RunReconciliation.requested_at).where(
            RunReconciliation.run_id == run_id, RunReconciliation.period == period
        )
    )
    return requested if requested is not None else now


def save_report(
    run_id: uuid.UUID, period: str, values: dict[str, Any], job_id: str | None, now: datetime
) -> bool:
    """Store a finished report; False (nothing written) when the same one is already stored.

    A job run twice therefore leaves one row, with the first run's ``computed_at``.
    """
    row = stored_report(run_id, period)
    if (
        row is not None
        and row.status == "done"
        and all(getattr(row, key) == values[key] for key in FIGURES)
    ):
        return False
    fields = {**values, "status": "done", "error": None, "computed_at": now}
    if job_id is not None:
        fields["job_id"] = job_id
    stmt = insert(RunReconciliation).values(run_id=run_id, period=period, **fields)
    db.execute(stmt.on_conflict_do_update(index_elements=["run_id", "period"], set_=fields))
    return True


def save_failure(
    run_id: uuid.UUID, period: str, as_of_ts: int | None, error: str, now: datetime
) -> None:
    """Mark the report failed as of ``as_of_ts`` (its previous figures stay)."""
    fields = {"status": "failed", "as_of_ts": as_of_ts, "error": error, "computed_at": now}
    stmt = insert(RunReconciliation).values(run_id=run_id, period=period, **fields)
    db.execute(stmt.on_conflict_do_update(index_elements=["run_id", "period"], set_=fields))


def latest_reports(run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, RunReconciliation]:
    """Each run's latest finished report of any period (runs without one are absent).

    For cards: a public bot's card shows whether its run has drifted from its backtest.
    Newest ``computed_at`` first; on a tie the longer period (``all`` last in PERIODS) wins.
    """
    if not run_ids:
        return {}
    rows = db.scalars(
        select(RunReconciliation).where(
            RunReconciliation.run_id.in_(run_ids),
            RunReconciliation.status == "done",
            RunReconciliation.diverged.is_not(None),
            RunReconciliation.computed_at.is_not(None),
        )
    )
    latest: dict[uuid.UUID, RunReconciliation] = {}
    for row in rows:
        seen = latest.get(row.run_id)
        if seen is None or _recency(row) > _recency(seen):
            latest[row.run_id] = row
    return latest


def _recency(row: RunReconciliation) -> tuple[datetime, int]:
    return row.computed_at or datetime.min.replace(tzinfo=UTC), PERIODS.index(row.period)


def stale_public_runs(period: str, limit: int) -> list[uuid.UUID]:
    """Live runs of public, visible bots whose ``period`` report is older than their last candle.

    Oldest reports first (never reconciled before any), at most ``limit``.
    """
    report = RunReconciliation
    rows = db.scalars(
        select(BotRun.id)
        .join(Bot, Bot.id == BotRun.bot_id)
        .outerjoin(report, and_(report.run_id == BotRun.id, report.period == period))
        .where(
            Bot.visibility == "public",
            Bot.hidden_at.is_(None),
            BotRun.status.in_(ACTIVE_BOT_STATUSES),
            BotRun.last_candle_ts.is_not(None),
            or_(report.as_of_ts.is_(None), report.as_of_ts < BotRun.last_candle_ts),
        )
        .order_by(report.as_of_ts.asc().nulls_first(), BotRun.id)
        .limit(limit)
    )
    return list(rows)
