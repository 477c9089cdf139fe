"""Stored equity curves read in pages or downsampled for charts, for any table keyed by run.

Backtests (``backtest_equity`` by ``backtest_id``) and live runs (``bot_equity`` by
``run_id``) store the same ``(key, ts, equity)`` rows, so one implementation serves both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text

from models.db import session as db


@dataclass(frozen=True)
class Curve:
    """One table of equity points: its mapped class and the name of its key column."""

    model: type[Any]
    key: str

    def where(self, key: uuid.UUID) -> Any:
        """The filter selecting one run's points."""
        return getattr(self.model, self.key) == key


def count_points(curve: Curve, key: uuid.UUID) -> int:
    """Points (bars) in one run's curve."""
    stmt = select(func.count()).select_from(curve.model).where(curve.where(key))
    return int(db.scalar(stmt) or 0)


def points_page(
    curve: Curve, key: uuid.UUID, after_ts: int | None, limit: int
) -> list[list[float]]:
    """Up to ``limit`` ``[ts, equity]`` rows after ``after_ts`` (exclusive), oldest first."""
    model = curve.model
    stmt = select(model.ts, model.equity).where(curve.where(key)).order_by(model.ts).limit(limit)
    if after_ts is not None:
        stmt = stmt.where(model.ts > after_ts)
    return [[int(ts), float(value)] for ts, value in db.execute(stmt)]


def points_for_chart(curve: Curve, key: uuid.UUID, points: int) -> list[list[float]]:
    """The curve cut into ``points`` equal spans of bars, each given by its last bar.

    The first and last bars are always included; with no more bars than ``points``
    every bar is returned. (Last-of-bucket keeps the curve's shape at chart sizes;
    the drawdown figures come from the full curve, in the metrics.)
    """
    total = count_points(curve, key)
    if total <= points:
        return points_page(curve, key, None, total or 1)
    # Table and column names come from the mapped class, never from a request.
    sql = f"""
        SELECT ts, equity FROM (
            SELECT ts, equity, row_number() OVER (ORDER BY ts) - 1 AS i
            FROM {curve.model.__tablename__} WHERE {curve.key} = :key
        ) numbered
        WHERE i = 0 OR i = :last
           OR (i + 1) * :points / :total > i * :points / :total
        ORDER BY ts
    """  # noqa: S608
    rows = db.execute(
        text(sql), {"key": key, "points": points - 1, "total": total, "last": total - 1}
    )
    return [[int(ts), float(value)] for ts, value in rows]
