"""Performance snapshots: one row per live run and period, computed from the daily rollups.

:func:`refresh` is the whole incremental pass (the job's body): roll up the dirty runs,
then recompute the four periods of exactly the runs whose rollups gained or changed a
day, through :func:`engine.performance.period_performance`, and upsert them. A run with
no new equity point keeps its rows untouched (``computed_at`` included). Readers use
:func:`snapshots_for` and :func:`snapshot_body`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, text

from engine.metrics import METRICS_VERSION
from engine.performance import PeriodPerformance, period_performance
from models import binary
from models.db import session as db
from models.performance.rollups import load_rollups, lock_refresh, roll_up, without_jit
from models.performance.tables import PERIOD_DAYS, PERIODS, RunDailyEquity, RunPerformance

SNAPSHOT_FIELDS = (
    "start_ts",
    "as_of_ts",
    "days_tracked",
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "psr",
    "max_drawdown",
    "trades",
    "win_rate",
    "profit_factor",
)
# Runs per snapshot batch: bounds the rows one pass holds in memory (a run has one row a day).
BATCH = 2000


_INTEGER_FIELDS = ("start_ts", "as_of_ts", "trades")
# Snapshots go out as a binary COPY into a temporary table (NaN, the engine's "undefined",
# standing for NULL; the period as its index in PERIODS), then one upsert from it.
_STAGE_COLUMNS = (
    ("run_id", "uuid"),
    ("period", "int2"),
    *((n, "int8" if n in _INTEGER_FIELDS else "float8") for n in SNAPSHOT_FIELDS),
)
_STAGE = "run_performance_stage"
_CREATE_STAGE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (
    {", ".join(f"{name} {pg_type} NOT NULL" for name, pg_type in _STAGE_COLUMNS)}
) ON COMMIT DELETE ROWS
"""
_UPSERT = """
INSERT INTO run_performance AS p (run_id, period, metrics_version, {names}, computed_at)
SELECT u.run_id, (CAST(:periods AS text[]))[u.period + 1], :version, {values}, clock_timestamp()
FROM {stage} u
ON CONFLICT (run_id, period) DO UPDATE SET
    metrics_version = EXCLUDED.metrics_version, {updates}, computed_at = clock_timestamp()
""".format(
    names=", ".join(SNAPSHOT_FIELDS),
    values=", ".join(
        f"u.{n}" if n in _INTEGER_FIELDS else f"NULLIF(u.{n}, 'NaN'::float8)"
        for n in SNAPSHOT_FIELDS
    ),
    stage=_STAGE,
    updates=", ".join(f"{n} = EXCLUDED.{n}" for n in SNAPSHOT_FIELDS),
)


def write_snapshots(order: Sequence[uuid.UUID], results: Sequence[PeriodPerformance]) -> None:
    """Upsert the snapshots of the runs ``order`` for each period (``results`` as PERIODS)."""
    n = len(order) * len(PERIODS)
    ids = np.frombuffer(b"".join(run_id.bytes for run_id in order), dtype="V16")
    values: dict[str, Any] = {
        "run_id": np.tile(ids, len(PERIODS)),
        "period": np.repeat(np.arange(len(PERIODS)), len(order)),
    }
    for name in SNAPSHOT_FIELDS:
        values[name] = np.concatenate([getattr(r, name) for r in results])
    db.execute(text(_CREATE_STAGE))
    db.execute(text(f"TRUNCATE {_STAGE}"))
    binary.copy_in(_STAGE, _STAGE_COLUMNS, values, n)
    db.execute(text(_UPSERT), {"periods": list(PERIODS), "version": METRICS_VERSION})


def recompute(run_ids: Sequence[uuid.UUID]) -> int:
    """Recompute and upsert the four periods of those runs from their rollups; runs done."""
    done = 0
    ids = sorted(set(run_ids))
    with without_jit():
        for start in range(0, len(ids), BATCH):
            order, rollups = load_rollups(ids[start : start + BATCH])
            if not order:
                continue
            results = [period_performance(rollups, PERIOD_DAYS[period]) for period in PERIODS]
            write_snapshots(order, results)
            done += len(order)
    return done


def refresh(run_ids: Sequence[uuid.UUID] | None = None) -> dict[str, int]:
    """Roll up the dirty runs (all, or among ``run_ids``) and refresh their snapshots.

    Serialised by an advisory lock, so two passes at once run one after the other and the
    second finds nothing left to do. Counts: runs rolled up, day rows written, runs whose
    snapshots were recomputed. The caller commits.
    """
    lock_refresh()
    rolled = roll_up(run_ids)
    changed = [run_id for run_id, days in rolled.items() if days > 0]
    return {
        "runs_rolled": len(rolled),
        "days_written": sum(rolled.values()),
        "runs_recomputed": recompute(changed),
    }


def snapshots_for(run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, RunPerformance]]:
    """The stored snapshots of those runs, by run and period (runs without any are absent)."""
    out: dict[uuid.UUID, dict[str, RunPerformance]] = {}
    if not run_ids:
        return out
    rows = db.scalars(
        select(RunPerformance)
        .where(RunPerformance.run_id.in_(list(run_ids)))
        .execution_options(populate_existing=True)  # upserts bypass the identity map
    )
    for row in rows:
        out.setdefault(row.run_id, {})[row.period] = row
    return out


def snapshot_of(run_id: uuid.UUID, period: str) -> RunPerformance | None:
    """The run's snapshot for the period; computed on the spot if it has rollable equity.

    A run that has equity but no snapshot yet (started since the last pass) goes through
    the same :func:`refresh` as the job, for that run only; never recomputed from raw
    bars. The caller commits.
    """
    row = db.get(RunPerformance, (run_id, period), populate_existing=True)
    if row is None:
        refresh([run_id])
        if has_rollups(run_id) and db.get(RunPerformance, (run_id, period)) is None:
            recompute([run_id])  # rolled up by an earlier pass that left no snapshot
        row = db.get(RunPerformance, (run_id, period), populate_existing=True)
    return row


def has_rollups(run_id: uuid.UUID) -> bool:
    """Whether the run has any daily rollup row."""
    return (
        db.scalar(select(RunDailyEquity.day).where(RunDailyEquity.run_id == run_id).limit(1))
        is not None
    )


def snapshot_body(row: RunPerformance) -> dict[str, Any]:
    """A snapshot as JSON-safe values: its period, version, metrics and when it was computed."""
    body: dict[str, Any] = {"period": row.period, "metrics_version": row.metrics_version}
    for name in SNAPSHOT_FIELDS:
        body[name] = getattr(row, name)
    body["computed_at"] = row.computed_at.isoformat()
    return body
