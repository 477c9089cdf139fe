"""Daily equity rollups of live runs, kept up to date incrementally (docs/metrics.md).

A run is dirty when its ``last_candle_ts`` passed its watermark (``run_rollup_state.
rolled_ts``) or it has no watermark yet. One statement re-aggregates every dirty run's
``bot_equity`` from the UTC day of its watermark on (that partial day in full, so a day
rolled up half-way is completed, never appended to), upserts the day rows with the
trades closed on those days, and moves the watermark to the run's ``last_candle_ts`` as
that same statement saw it. A tick writes its equity points and ``last_candle_ts`` in
one transaction, so the watermark never passes an equity point the rollup did not see.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from engine.performance import DailyRollups
from models.bots.bots import Bot
from models.bots.runs import BotRun
from models.db import session as db
from models.market.tables import TIMEFRAME_MS
from models.performance.tables import RunDailyEquity

# Serialises refreshes (the periodic job, an on-the-spot refresh from the API): two at
# once would only redo the same work, but the later watermark must not be overwritten by
# an earlier one. Transaction-scoped, so it is gone with the commit or a crash.
REFRESH_LOCK = 1_400_014

# Days are UTC days by bar open time: ts / 86400000 (engine.metrics.DAY_MS).
_ROLLUP = """
WITH dirty AS (
    SELECT r.id AS run_id, r.last_candle_ts,
           COALESCE(s.rolled_ts / 86400000 * 86400000, 0) AS from_ts
    FROM bot_runs r
    LEFT JOIN run_rollup_state s ON s.run_id = r.id
    WHERE r.last_candle_ts IS NOT NULL
      AND (s.rolled_ts IS NULL OR r.last_candle_ts > s.rolled_ts)
      AND (CAST(:run_ids AS uuid[]) IS NULL OR r.id = ANY(CAST(:run_ids AS uuid[])))
),
marks AS (
    SELECT e.run_id, (e.ts / 86400000)::int AS day, e.ts, e.equity,
           max(e.equity) OVER (
               PARTITION BY e.run_id, e.ts / 86400000 ORDER BY e.ts
           ) AS peak
    FROM bot_equity e
    JOIN dirty d ON d.run_id = e.run_id AND e.ts >= d.from_ts
),
days AS (
    SELECT run_id, day, min(ts) AS first_ts, max(ts) AS last_ts, count(*) AS bars,
           (array_agg(equity ORDER BY ts))[1] AS open,
           (array_agg(equity ORDER BY ts DESC))[1] AS close,
           max(equity) AS high, min(equity) AS low,
           COALESCE(max(1 - equity / peak) FILTER (WHERE peak > 0), 0) AS max_drawdown
    FROM marks
    GROUP BY run_id, day
),
closed AS (
    SELECT t.run_id, (t.exit_ts / 86400000)::int AS day, count(*) AS trades,
           count(*) FILTER (WHERE t.pnl > 0) AS wins,
           COALESCE(sum(t.pnl) FILTER (WHERE t.pnl > 0), 0) AS gross_profit,
           COALESCE(-sum(t.pnl) FILTER (WHERE t.pnl < 0), 0) AS gross_loss
    FROM bot_trades t
    JOIN dirty d ON d.run_id = t.run_id AND t.exit_ts >= d.from_ts
    GROUP BY t.run_id, (t.exit_ts / 86400000)::int
),
upserted AS (
    INSERT INTO run_daily_equity AS r (
        run_id, day, first_ts, last_ts, bars, open, close, high, low, max_drawdown,
        trades, wins, gross_profit, gross_loss
    )
    SELECT d.run_id, d.day, d.first_ts, d.last_ts, d.bars, d.open, d.close, d.high, d.low,
           d.max_drawdown, COALESCE(c.trades, 0), COALESCE(c.wins, 0),
           COALESCE(c.gross_profit, 0), COALESCE(c.gross_loss, 0)
    FROM days d
    LEFT JOIN closed c ON c.run_id = d.run_id AND c.day = d.day
    ON CONFLICT (run_id, day) DO UPDATE SET
        first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts, bars = EXCLUDED.bars,
        open = EXCLUDED.open, close = EXCLUDED.close, high = EXCLUDED.high,
        low = EXCLUDED.low, max_drawdown = EXCLUDED.max_drawdown,
        trades = EXCLUDED.trades, wins = EXCLUDED.wins,
        gross_profit = EXCLUDED.gross_profit, gross_loss = EXCLUDED.gross_loss
    RETURNING r.run_id
),
advanced AS (
    INSERT INTO run_rollup_state AS s (run_id, rolled_ts, updated_at)
    SELECT run_id, last_candle_ts, now() FROM dirty
    ON CONFLICT (run_id) DO UPDATE SET rolled_ts = EXCLUDED.rolled_ts, updated_at = now()
    RETURNING s.run_id
)
SELECT a.run_id, COALESCE(u.days, 0) AS days
FROM advanced a
LEFT JOIN (SELECT run_id, count(*) AS days FROM upserted GROUP BY run_id) u
    ON u.run_id = a.run_id
"""


def lock_refresh() -> None:
    """Wait for any other refresh to commit; held until this transaction ends."""
    db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})


def roll_up(run_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """Bring the rollups of the dirty runs (all, or among ``run_ids``) up to date.

    Returns ``{run_id: day rows written}`` for every run whose watermark moved; a run
    whose watermark moved without a new equity point (a tick with no bar) maps to 0.
    """
    statement = text(_ROLLUP).bindparams(bindparam("run_ids", type_=ARRAY(UUID(as_uuid=True))))
    rows = db.execute(statement, {"run_ids": None if run_ids is None else list(run_ids)})
    return {run_id: int(days) for run_id, days in rows}


_COLUMNS = (
    "day",
    "first_ts",
    "last_ts",
    "bars",
    "close",
    "high",
    "low",
    "max_drawdown",
    "trades",
    "wins",
    "gross_profit",
    "gross_loss",
)
_INTEGER_COLUMNS = {"day", "first_ts", "last_ts", "bars", "trades", "wins"}
# One row of arrays in whatever order the scan gives (every aggregate sees the rows in the
# same order), sorted by (run, day) in numpy: building a Row per day row, or sorting on the
# server (twelve ordered aggregates), costs several times more than the scan itself.
_LOAD = """
WITH wanted AS (SELECT w.id, w.k FROM unnest(CAST(:run_ids AS uuid[])) WITH ORDINALITY AS w(id, k))
SELECT array_agg(w.k), {columns}
FROM run_daily_equity e JOIN wanted w ON w.id = e.run_id
""".replace("{columns}", ", ".join(f"array_agg(e.{c})" for c in _COLUMNS))


def load_rollups(run_ids: Sequence[uuid.UUID]) -> tuple[list[uuid.UUID], DailyRollups]:
    """The daily rows of those runs (the ones that have any), in the engine's layout.

    Returns the runs in the order of ``DailyRollups.offsets``.
    """
    ids = list(run_ids)
    param = bindparam("run_ids", type_=ARRAY(UUID(as_uuid=True)))
    arrays = db.execute(text(_LOAD).bindparams(param), {"run_ids": ids}).one()
    k = np.asarray(arrays[0] or [], dtype=np.int64)
    day = np.asarray(arrays[1] or [], dtype=np.int64)
    order_rows = np.lexsort((day, k))
    columns: dict[str, Any] = {
        name: np.asarray(
            arrays[i + 1] or [], dtype=np.int64 if name in _INTEGER_COLUMNS else np.float64
        )[order_rows]
        for i, name in enumerate(_COLUMNS)
    }
    present, starts = np.unique(k[order_rows], return_index=True)
    order = [ids[int(j) - 1] for j in present]
    meta = {
        run_id: (capital, TIMEFRAME_MS[timeframe])
        for run_id, capital, timeframe in db.execute(
            select(BotRun.id, BotRun.initial_capital, Bot.timeframe)
            .join(Bot, Bot.id == BotRun.bot_id)
            .where(BotRun.id.in_(order))
        )
    }
    rollups = DailyRollups(
        offsets=starts.astype(np.int64),
        initial_capital=np.asarray([meta[r][0] for r in order], dtype=np.float64),
        bar_ms=np.asarray([meta[r][1] for r in order], dtype=np.int64),
        **columns,
    )
    return order, rollups


def daily_rows(run_id: uuid.UUID, limit: int, after_day: int | None) -> list[RunDailyEquity]:
    """Up to ``limit`` of a run's day rows, oldest first, after ``after_day`` if given."""
    query = select(RunDailyEquity).where(RunDailyEquity.run_id == run_id)
    if after_day is not None:
        query = query.where(RunDailyEquity.day > after_day)
    query = query.order_by(RunDailyEquity.day).limit(limit)
    return list(db.scalars(query.execution_options(populate_existing=True)))
