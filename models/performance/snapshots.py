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
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from engine.metrics import METRICS_VERSION
from engine.performance import period_performance
from models.db import session as db
from models.performance.rollups import load_rollups, lock_refresh, roll_up
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
# One upsert per batch from unnest of arrays (the fast bulk form, docs/architecture.md); NaN,
# the engine's "undefined", becomes NULL.
_UPSERT = """
INSERT INTO run_performance AS p (run_id, period, metrics_version, {names}, computed_at)
SELECT u.run_id, u.period, :version, {values}, clock_timestamp()
FROM unnest(CAST(:run_id AS uuid[]), CAST(:period AS text[]), {arrays})
    AS u(run_id, period, {names})
ON CONFLICT (run_id, period) DO UPDATE SET
    metrics_version = EXCLUDED.metrics_version, {updates}, computed_at = clock_timestamp()
""".format(
    names=", ".join(SNAPSHOT_FIELDS),
    values=", ".join(
        f"u.{n}" if n in _INTEGER_FIELDS else f"NULLIF(u.{n}, 'NaN'::float8)"
        for n in SNAPSHOT_FIELDS
    ),
    arrays=", ".join(
        f"CAST(:{n} AS {'bigint' if n in _INTEGER_FIELDS else 'float8'}[])" for n in SNAPSHOT_FIELDS
    ),
    updates=", ".join(f"{n} = EXCLUDED.{n}" for n in SNAPSHOT_FIELDS),
)


def recompute(run_ids: Sequence[uuid.UUID]) -> int:
    """Recompute and upsert the four periods of those runs from their rollups; runs done."""
    done = 0
    ids = sorted(set(run_ids))
    for start in range(0, len(ids), BATCH):
        order, rollups = load_rollups(ids[start : start + BATCH])
        if not order:
            continue
        params: dict[str, Any] = {
            "version": METRICS_VERSION,
            "run_id": order * len(PERIODS),
            "period": [period for period in PERIODS for _ in order],
        }
        results = [period_performance(rollups, PERIOD_DAYS[period]) for period in PERIODS]
        for name in SNAPSHOT_FIELDS:
            params[name] = np.concatenate([getattr(r, name) for r in results]).tolist()
        db.execute(text(_UPSERT).bindparams(bindparam("run_id", type_=ARRAY(UUID()))), params)
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
