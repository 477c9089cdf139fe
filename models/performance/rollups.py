"""Daily equity rollups of live runs, kept up to date incrementally (docs/metrics.md).

A run is dirty when its ``last_candle_ts`` passed its watermark (``run_rollup_state.
rolled_ts``) or it has no watermark yet. One statement folds every dirty run's new equity
points (``rolled_ts < ts <= last_candle_ts``) and newly closed trades into its day rows:
new days inserted, the day the watermark was in merged (bars added, close and last_ts
replaced, high and low widened, the intraday drawdown merged against the stored high, the
trades' sums continued in order), exactly as one rollup of the whole series would have
made them. It moves the watermark to the ``last_candle_ts`` it saw; a tick writes its
trades, equity points and ``last_candle_ts`` in one transaction, so the watermark never
passes a point or a trade the rollup did not see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from engine.performance import DailyRollups
from models import binary
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
    SELECT r.id AS run_id, r.last_candle_ts, COALESCE(s.rolled_ts, -1) AS after_ts
    FROM bot_runs r
    LEFT JOIN run_rollup_state s ON s.run_id = r.id
    WHERE r.last_candle_ts IS NOT NULL
      AND (s.rolled_ts IS NULL OR r.last_candle_ts > s.rolled_ts)
      AND (CAST(:run_ids AS uuid[]) IS NULL OR r.id = ANY(CAST(:run_ids AS uuid[])))
),
-- The day row the watermark is in (the only one a run's new marks can fall in that
-- already exists): its high is the running peak the day's new marks continue from. One
-- index probe a run (OFFSET 0 keeps the planner from scanning the whole table instead).
open_day AS (
    SELECT d.run_id, o.day, o.high
    FROM dirty d
    JOIN LATERAL (
        SELECT o.day, o.high FROM run_daily_equity o
        WHERE o.run_id = d.run_id AND o.day = d.after_ts / 86400000
        OFFSET 0
    ) o ON true
),
marks AS (
    SELECT e.run_id, (e.ts / 86400000)::int AS day, e.ts, e.equity,
           GREATEST(
               od.high,
               max(e.equity) OVER (PARTITION BY e.run_id, e.ts / 86400000 ORDER BY e.ts)
           ) AS peak
    FROM bot_equity e
    JOIN dirty d ON d.run_id = e.run_id AND e.ts > d.after_ts AND e.ts <= d.last_candle_ts
    LEFT JOIN open_day od ON od.run_id = e.run_id AND od.day = e.ts / 86400000
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
new_trades AS (
    SELECT d.run_id, (t.exit_ts / 86400000)::int AS day, t.exit_ts, t.client_order_id, t.pnl
    FROM dirty d
    JOIN LATERAL (
        SELECT t.exit_ts, t.client_order_id, t.pnl FROM bot_trades t
        WHERE t.run_id = d.run_id AND t.exit_ts > d.after_ts AND t.exit_ts <= d.last_candle_ts
        OFFSET 0
    ) t ON true
),
trade_days AS (
    SELECT DISTINCT run_id, day FROM new_trades
),
-- A day's trade counters after its new trades, the stored ones included: the sums go on
-- from the stored value in the one-shot rollup's order (exit_ts, client order id), so
-- they are the same floats. A day with no new trade has no row here and keeps its own.
closed AS (
    SELECT run_id, day, sum(n) AS trades, sum(w) AS wins,
           COALESCE(sum(profit ORDER BY seq, exit_ts, client_order_id), 0) AS gross_profit,
           COALESCE(sum(loss ORDER BY seq, exit_ts, client_order_id), 0) AS gross_loss
    FROM (
        SELECT o.run_id, o.day, 0 AS seq, 0::bigint AS exit_ts, ''::text AS client_order_id,
               o.trades AS n, o.wins AS w, o.gross_profit AS profit, o.gross_loss AS loss
        FROM run_daily_equity o JOIN trade_days USING (run_id, day)
        UNION ALL
        SELECT run_id, day, 1, exit_ts, client_order_id, 1, (pnl > 0)::int,
               CASE WHEN pnl > 0 THEN pnl END, CASE WHEN pnl < 0 THEN -pnl END
        FROM new_trades
    ) merged
    GROUP BY run_id, day
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
        last_ts = EXCLUDED.last_ts, bars = r.bars + EXCLUDED.bars, close = EXCLUDED.close,
        high = GREATEST(r.high, EXCLUDED.high), low = LEAST(r.low, EXCLUDED.low),
        max_drawdown = GREATEST(r.max_drawdown, EXCLUDED.max_drawdown),
        trades = CASE WHEN EXCLUDED.trades > 0 THEN EXCLUDED.trades ELSE r.trades END,
        wins = CASE WHEN EXCLUDED.trades > 0 THEN EXCLUDED.wins ELSE r.wins END,
        gross_profit = CASE WHEN EXCLUDED.trades > 0 THEN EXCLUDED.gross_profit
                            ELSE r.gross_profit END,
        gross_loss = CASE WHEN EXCLUDED.trades > 0 THEN EXCLUDED.gross_loss
                          ELSE r.gross_loss END
    RETURNING r.run_id
),
traded AS (
    UPDATE run_daily_equity AS r
    SET trades = c.trades, wins = c.wins, gross_profit = c.gross_profit,
        gross_loss = c.gross_loss
    FROM closed c
    WHERE r.run_id = c.run_id AND r.day = c.day
      AND NOT EXISTS (SELECT 1 FROM days d WHERE d.run_id = c.run_id AND d.day = c.day)
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
LEFT JOIN (
    SELECT run_id, count(*) AS days
    FROM (SELECT run_id FROM upserted UNION ALL SELECT run_id FROM traded) w
    GROUP BY run_id
) u ON u.run_id = a.run_id
"""


@contextmanager
def without_jit() -> Iterator[None]:
    """Plan the statements inside without JIT compilation, then restore the setting.

    The planner overestimates the rollup and load joins (millions of rows) and would
    spend a quarter of a second compiling each, several times what it then runs.
    """
    previous = db.execute(text("SELECT current_setting('jit')")).scalar_one()
    db.execute(text("SELECT set_config('jit', 'off', true)"))
    try:
        yield
    finally:
        db.execute(text("SELECT set_config('jit', :value, true)"), {"value": previous})


def lock_refresh() -> None:
    """Wait for any other refresh to commit; held until this transaction ends."""
    db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REFRESH_LOCK})


def roll_up(run_ids: Sequence[uuid.UUID] | None = None) -> dict[uuid.UUID, int]:
    """Bring the rollups of the dirty runs (all, or among ``run_ids``) up to date.

    Returns ``{run_id: day rows written}`` for every run whose watermark moved; a run
    whose watermark moved without a new equity point (a tick with no bar) maps to 0.
    """
    statement = text(_ROLLUP).bindparams(bindparam("run_ids", type_=ARRAY(UUID(as_uuid=True))))
    with without_jit():
        rows = db.execute(statement, {"run_ids": None if run_ids is None else list(run_ids)})
        return {run_id: int(days) for run_id, days in rows}


# The day rows as the engine reads them, packed (all fixed width, all NOT NULL): ``k`` is
# the run's position in the requested list. Parsed by one numpy dtype and sorted by (run,
# day) in numpy (docs/metrics.md, "Live performance").
_COLUMNS = (
    ("k", "int8", "w.k"),
    *(
        (name, pg_type, f"e.{name}")
        for name, pg_type in (
            ("day", "int4"),
            ("first_ts", "int8"),
            ("last_ts", "int8"),
            ("close", "float8"),
            ("high", "float8"),
            ("low", "float8"),
            ("max_drawdown", "float8"),
            ("trades", "int4"),
            ("wins", "int4"),
            ("gross_profit", "float8"),
            ("gross_loss", "float8"),
        )
    ),
)
_LOAD_FROM = """run_daily_equity e
JOIN unnest(%s::uuid[]) WITH ORDINALITY AS w(id, k) ON w.id = e.run_id"""


_META = """
SELECT w.k, r.initial_capital, b.timeframe
FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS w(id, k)
JOIN bot_runs r ON r.id = w.id
JOIN bots b ON b.id = r.bot_id
"""
_IDS_PARAM = bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))


def load_rollups(run_ids: Sequence[uuid.UUID]) -> tuple[list[uuid.UUID], DailyRollups]:
    """The daily rows of those runs (the ones that have any), in the engine's layout.

    Returns the runs in the order of ``DailyRollups.offsets``.
    """
    ids = list(run_ids)
    rows = binary.fetch(_COLUMNS, _LOAD_FROM, [ids])
    k = rows["k"].astype(np.int64)
    day = rows["day"].astype(np.int64)
    key = (k << 32) | day  # days since 1970 are positive and far below 2**32
    order_rows = None if bool((key[1:] > key[:-1]).all()) else np.argsort(key, kind="stable")
    columns: dict[str, Any] = {}
    for name, pg_type, _ in _COLUMNS[1:]:
        column = rows[name] if order_rows is None else rows[name][order_rows]
        columns[name] = column.astype(np.float64 if pg_type == "float8" else np.int64)
    k = k if order_rows is None else k[order_rows]
    present, starts = np.unique(k, return_index=True)
    order = [ids[int(j) - 1] for j in present]
    meta = {
        int(k): (capital, TIMEFRAME_MS[timeframe])
        for k, capital, timeframe in db.execute(text(_META).bindparams(_IDS_PARAM), {"ids": ids})
    }
    rollups = DailyRollups(
        offsets=starts.astype(np.int64),
        initial_capital=np.asarray([meta[int(j)][0] for j in present], dtype=np.float64),
        bar_ms=np.asarray([meta[int(j)][1] for j in present], dtype=np.int64),
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
