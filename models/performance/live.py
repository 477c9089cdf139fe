"""What GET /bots/{id}/performance and /equity?resolution=day serve: snapshots and day rows.

Both read what the performance job keeps (models/performance/snapshots.py, rollups.py);
a run with equity that no pass has reached yet is rolled up on the spot through the same
code, never recomputed from its raw bars. The caller commits (a spot refresh writes).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.metrics import DAY_MS, METRICS_VERSION
from models.bots.bots import Bot
from models.bots.results import run_account
from models.bots.runs import BotRun
from models.equity_curves import Curve, count_points
from models.performance.rollups import daily_rows
from models.performance.snapshots import has_rollups, refresh, snapshot_body, snapshot_of
from models.performance.tables import RunDailyEquity


def live_performance(bot: Bot, run: BotRun | None, period: str) -> dict[str, Any]:
    """The run's stored snapshot for ``period`` beside its account; nulls without a run.

    ``metrics`` is :func:`snapshot_body` plus ``end_ts`` and ``days``, the names the
    per-bar metric set used for ``as_of_ts`` and ``days_tracked``.
    """
    body = run_account(bot, run)
    body.update(period=period, as_of=None, metrics=None, metrics_version=METRICS_VERSION)
    if run is None:
        return body
    row = snapshot_of(run.id, period)
    if row is None:
        return body
    metrics = snapshot_body(row)
    metrics.update(end_ts=row.as_of_ts, days=row.days_tracked)
    body.update(
        metrics=metrics,
        metrics_version=row.metrics_version,
        as_of=datetime.fromtimestamp(row.as_of_ts / 1000, UTC),
    )
    return body


def day_item(row: RunDailyEquity) -> dict[str, Any]:
    """A day row as the API sends it (``day_ts`` is the UTC midnight opening it, ms)."""
    return {
        "day_ts": row.day * DAY_MS,
        "first_ts": row.first_ts,
        "last_ts": row.last_ts,
        "bars": row.bars,
        "open": row.open,
        "high": row.high,
        "low": row.low,
        "close": row.close,
        "max_drawdown": row.max_drawdown,
        "trades": row.trades,
    }


def daily_equity(run: BotRun, after_ts: int | None, limit: int) -> list[RunDailyEquity]:
    """Up to ``limit`` of the run's day rows whose day comes after that of ``after_ts``.

    A run with equity but no rollup yet is rolled up first (that run only).
    """
    if run.last_candle_ts is not None and not has_rollups(run.id):
        refresh([run.id])
    after_day = None if after_ts is None else after_ts // DAY_MS
    return daily_rows(run.id, limit, after_day)


# The day rows are keyed by run like the raw curves: the shared curve helpers count them.
DAY_CURVE = Curve(RunDailyEquity, "run_id")


def day_count(run: BotRun) -> int:
    """Days in the run's rollups."""
    return count_points(DAY_CURVE, run.id)
