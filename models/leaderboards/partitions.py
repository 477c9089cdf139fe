"""Writing a generation's entries: one partition, filled and ranked by Postgres itself.

``leaderboard_entries`` is partitioned by generation. A build creates a plain table for
its generation, fills it with one ``INSERT … SELECT`` that ranks every board with window
functions (formula 1, models/leaderboards/ranking.py), indexes it once it is full (a
bulk index build, far cheaper than maintaining indexes row by row), and attaches it as
the generation's partition. Pruning drops whole partitions. No entry travels through
Python: for 10,000 bots the 160,000 rows are computed and written by the server
(docs/performance.md, "Leaderboard recompute").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, text

from models.db import raw_connection
from models.db import session as db
from models.leaderboards.eligibility import Candidate
from models.leaderboards.ranking import FORMULA_VERSION, ORDER_BY, SCORE_COLUMNS


def partition_name(generation_id: int) -> str:
    """The table holding one generation's entries (an int, so safe to interpolate)."""
    return f"leaderboard_entries_{int(generation_id)}"


def _stage_eligible(candidates: Iterable[Candidate]) -> int:
    """The eligible bots into a temporary table (``write_entries`` drops it); how many."""
    db.execute(
        text(
            """
            CREATE TEMPORARY TABLE leaderboard_eligible (
                bot_id uuid PRIMARY KEY, owner_id uuid NOT NULL, run_id uuid NOT NULL,
                instrument text NOT NULL, strategy text NOT NULL,
                created_at timestamptz NOT NULL
            )
            """
        )
    )
    rows = [
        (c.bot_id, c.owner_id, c.run_id, c.instrument, c.strategy, c.created_at)
        for c in candidates
        if c.eligible and c.run_id is not None
    ]
    raw = raw_connection()
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY leaderboard_eligible "
            "(bot_id, owner_id, run_id, instrument, strategy, created_at) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    db.execute(text("ANALYZE leaderboard_eligible"))
    return len(rows)


def _finite(column: str) -> str:
    """SQL for a float column with NaN and infinities as NULL."""
    return f"CASE WHEN {column} IN ('NaN', 'Infinity', '-Infinity') THEN NULL ELSE {column} END"


# Every board at once. Each snapshot of an eligible run gives one row per metric with a
# finite score; row_number() over the formula's order gives the overall rank, and the
# overall rank orders the ranks within the instrument and the strategy family; the
# previous generation gives previous_rank.
_FILL = """
INSERT INTO {table} (
    generation_id, period, metric, rank, bot_id, owner_id, run_id, instrument, strategy,
    instrument_rank, strategy_rank, score, previous_rank, formula_version, metrics_version,
    days_tracked, trades, max_drawdown, total_return, sharpe, psr, calmar, as_of_ts
)
WITH scored AS (
    -- Text keys in the "C" collation: sorted by bytes, not by locale rules.
    SELECT s.period COLLATE "C" AS period, m.metric COLLATE "C" AS metric, m.score,
           c.bot_id, c.owner_id, c.run_id, c.instrument COLLATE "C" AS instrument,
           c.strategy COLLATE "C" AS strategy, c.created_at, s.metrics_version,
           s.days_tracked, s.trades, {max_drawdown} AS max_drawdown,
           {total_return} AS total_return, {sharpe} AS sharpe, {psr} AS psr,
           {calmar} AS calmar, s.as_of_ts
    FROM leaderboard_eligible c
    JOIN run_performance s ON s.run_id = c.run_id
    CROSS JOIN LATERAL (VALUES {scores}) AS m(metric, score)
    WHERE m.score IS NOT NULL AND m.score NOT IN ('NaN', 'Infinity', '-Infinity')
), overall AS (
    SELECT scored.*, row_number() OVER (PARTITION BY period, metric ORDER BY {order}) AS rank
    FROM scored
), ranked AS (
    SELECT overall.*,
           row_number() OVER (PARTITION BY period, metric, instrument ORDER BY rank)
               AS instrument_rank,
           row_number() OVER (PARTITION BY period, metric, strategy ORDER BY rank)
               AS strategy_rank
    FROM overall
)
SELECT :g, r.period, r.metric, r.rank, r.bot_id, r.owner_id, r.run_id, r.instrument,
       r.strategy, r.instrument_rank, r.strategy_rank, r.score, o.rank, :formula,
       r.metrics_version, r.days_tracked, r.trades, r.max_drawdown, r.total_return,
       r.sharpe, r.psr, r.calmar, r.as_of_ts
FROM ranked r
LEFT JOIN leaderboard_entries o
  ON o.generation_id = :previous AND o.period = r.period AND o.metric = r.metric
 AND o.bot_id = r.bot_id
"""


def _fill_sql(table: str) -> str:
    scores = ", ".join(f"('{metric}', s.{column})" for metric, column in SCORE_COLUMNS.items())
    figures = {
        name: _finite(f"s.{name}")
        for name in ("max_drawdown", "total_return", "sharpe", "psr", "calmar")
    }
    return _FILL.format(table=table, scores=scores, order=ORDER_BY, **figures)


def write_entries(
    generation_id: int, candidates: Sequence[Candidate], previous_id: int | None
) -> int:
    """Rank the eligible candidates on every board into the generation's partition.

    Runs in the caller's transaction (the build): the partition exists for others only
    once that commits, and its generation is not active until the swap. Returns how many
    entries were written.
    """
    table = partition_name(generation_id)
    g = int(generation_id)
    db.execute(
        text(
            f"CREATE TABLE {table} (LIKE leaderboard_entries INCLUDING DEFAULTS, "
            f"CONSTRAINT ck_{table}_generation CHECK (generation_id = {g}))"
        )
    )
    _stage_eligible(candidates)
    # The three window sorts of 160,000 rows fit in memory instead of spilling to disk.
    db.execute(text("SET LOCAL work_mem = '64MB'"))
    previous = previous_id if previous_id is not None else -1
    params = {"g": g, "previous": previous, "formula": FORMULA_VERSION}
    written = cast(CursorResult[Any], db.execute(text(_fill_sql(table)), params)).rowcount
    # Indexes matching the parent's, built in bulk; ATTACH adopts them instead of building.
    db.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY (generation_id, period, metric, rank)"))
    db.execute(text(f"CREATE INDEX ON {table} (generation_id, bot_id)"))
    db.execute(
        text(f"ALTER TABLE leaderboard_entries ATTACH PARTITION {table} FOR VALUES IN ({g})")
    )
    # Statistics now, not when autovacuum gets to it: without them the next build's join to
    # this generation (previous ranks) and the board reads plan badly (measured: minutes).
    db.execute(text(f"ANALYZE {table}"))
    db.execute(text("DROP TABLE leaderboard_eligible"))
    return int(written)


def drop_partitions(generation_ids: Iterable[int]) -> None:
    """Drop the partitions of pruned generations (a missing one is fine)."""
    for generation_id in generation_ids:
        db.execute(text(f"DROP TABLE IF EXISTS {partition_name(generation_id)}"))
