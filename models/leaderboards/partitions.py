"""Writing a generation's entries: one partition, ranked in numpy, filled by Postgres.

``leaderboard_entries`` is partitioned by generation. A build:

1. reads the snapshots of the eligible candidates (models/leaderboards/eligibility.py),
   all periods, and the ranks of the active generation, by binary ``COPY``
   (models/binary.py);
2. ranks every board at once (:func:`models.leaderboards.ranking.rank_boards`);
3. copies the ranks (one narrow row per entry) and the components (one row per bot and
   period) into two temporary tables, and fills a plain table of its own with one
   ``INSERT … SELECT`` joining them to the candidates;
4. indexes it once it is full (a bulk index build, far cheaper than maintaining indexes
   row by row), attaches it as the generation's partition and gathers its statistics.

Pruning drops whole partitions. Timings in docs/performance.md ("Leaderboard recompute").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np
from sqlalchemy import CursorResult, text

from models import binary
from models.db import session as db
from models.leaderboards.ranking import (
    BOARDS,
    FORMULA_VERSION,
    SCORE_COLUMNS,
    Ranked,
    Snapshots,
    rank_boards,
)
from models.leaderboards.tables import BOARD_METRICS
from models.performance.tables import PERIODS

RANKS = "leaderboard_ranks"
COMPONENTS = "leaderboard_components"
_FIGURES = ("max_drawdown", "total_return", "sharpe", "psr", "calmar")


def partition_name(generation_id: int) -> str:
    """The table holding one generation's entries (an int, so safe to interpolate)."""
    return f"leaderboard_entries_{int(generation_id)}"


def _period_code(column: str) -> str:
    return f"(array_position(%(periods)s::text[], {column}::text) - 1)::int2"


# The eligible candidates' snapshots, one row per (bot, period); NaN stands for NULL.
_SNAPSHOT_COLUMNS = (
    ("k", "int4", "c.k"),
    ("period", "int2", _period_code("s.period")),
    (
        "version",
        "int2",
        "(array_position(%(versions)s::text[], s.metrics_version::text) - 1)::int2",
    ),
    ("days_tracked", "float8", "s.days_tracked"),
    ("trades", "int4", "s.trades"),
    ("as_of_ts", "int8", "s.as_of_ts"),
    *((name, "float8", f"COALESCE(s.{name}, 'NaN')") for name in _FIGURES),
    ("created", "int8", "(extract(epoch FROM c.created_at) * 1000000)::int8"),
    ("instrument", "int4", "c.instrument_code"),
    ("strategy", "int4", "c.strategy_code"),
)
_SNAPSHOTS_FROM = """leaderboard_candidates c
JOIN run_performance s ON s.run_id = c.run_id
WHERE c.reasons = '{}'"""
# The active generation's ranks of the bots still considered, for previous_rank.
_PREVIOUS_COLUMNS = (
    ("k", "int4", "c.k"),
    ("period", "int2", _period_code("e.period")),
    ("metric", "int2", "(array_position(%(metrics)s::text[], e.metric::text) - 1)::int2"),
    ("rank", "int4", "e.rank"),
)
_PREVIOUS_FROM = """leaderboard_entries e
JOIN leaderboard_candidates c ON c.bot_id = e.bot_id
WHERE e.generation_id = %(previous)s"""

_RANK_COLUMNS = (
    ("board", "int2"),
    ("rank", "int4"),
    ("k", "int4"),
    ("instrument_rank", "int4"),
    ("strategy_rank", "int4"),
    ("previous_rank", "int4"),
    ("score", "float8"),
)
_COMPONENT_COLUMNS = (
    ("k", "int4"),
    ("period", "int2"),
    ("version", "int2"),
    ("days_tracked", "float8"),
    ("trades", "int4"),
    ("as_of_ts", "int8"),
    *((name, "float8") for name in _FIGURES),
)
# Every entry: its ranks joined to its bot (candidates) and its components (bot, period).
# NaN stands for NULL in the figures, 0 for "no previous rank".
_FILL = """
INSERT INTO {table} (
    generation_id, period, metric, rank, bot_id, owner_id, run_id, instrument, strategy,
    instrument_rank, strategy_rank, score, previous_rank, formula_version, metrics_version,
    days_tracked, trades, max_drawdown, total_return, sharpe, psr, calmar, as_of_ts
)
SELECT :g, (CAST(:board_periods AS text[]))[r.board + 1],
       (CAST(:board_metrics AS text[]))[r.board + 1], r.rank, c.bot_id, c.owner_id, c.run_id,
       c.instrument, c.strategy, r.instrument_rank, r.strategy_rank, r.score,
       NULLIF(r.previous_rank, 0), :formula, (CAST(:versions AS text[]))[p.version + 1],
       p.days_tracked, p.trades, {figures}, p.as_of_ts
FROM {ranks} r
JOIN leaderboard_candidates c ON c.k = r.k
JOIN {components} p ON p.k = r.k AND p.period = r.board / {metrics}
""".format(
    table="{table}",
    figures=", ".join(f"NULLIF(p.{name}, 'NaN')" for name in _FIGURES),
    ranks=RANKS,
    components=COMPONENTS,
    metrics=len(BOARD_METRICS),
)


def load_snapshots() -> tuple[Snapshots, np.ndarray, list[str]]:
    """The eligible candidates' snapshots (all periods) as the formula reads them.

    Also returns the rows themselves (the components come from them) and the metrics
    versions their ``version`` codes index.
    """
    versions = [
        str(v)
        for v in db.scalars(
            text(
                "SELECT DISTINCT s.metrics_version FROM leaderboard_candidates c "
                "JOIN run_performance s ON s.run_id = c.run_id WHERE c.reasons = '{}'"
            )
        )
    ]
    rows = binary.fetch(
        _SNAPSHOT_COLUMNS, _SNAPSHOTS_FROM, {"periods": list(PERIODS), "versions": versions}
    )
    snapshots = Snapshots(
        k=rows["k"].astype(np.int64),
        period=rows["period"].astype(np.int64),
        days_tracked=rows["days_tracked"].astype(np.float64),
        created=rows["created"].astype(np.int64),
        instrument=rows["instrument"].astype(np.int64),
        strategy=rows["strategy"].astype(np.int64),
        scores={metric: rows[SCORE_COLUMNS[metric]].astype(np.float64) for metric in BOARD_METRICS},
    )
    return snapshots, rows, versions


def previous_ranks(previous_id: int | None, ranked: Ranked, snapshots: Snapshots) -> np.ndarray:
    """Each entry's rank on the same board of generation ``previous_id`` (0 when none)."""
    out = np.zeros(len(ranked.rank), dtype=np.int64)
    if previous_id is None or len(out) == 0:
        return out
    rows = binary.fetch(
        _PREVIOUS_COLUMNS,
        _PREVIOUS_FROM,
        {"periods": list(PERIODS), "metrics": list(BOARD_METRICS), "previous": previous_id},
    )
    size = int(snapshots.k.max()) + 1
    table = np.zeros((len(BOARDS), size), dtype=np.int64)
    known = rows["k"].astype(np.int64) < size
    board = rows["period"].astype(np.int64) * len(BOARD_METRICS) + rows["metric"]
    table[board[known], rows["k"][known]] = rows["rank"][known]
    return table[ranked.board, snapshots.k[ranked.row]]


def _stage(name: str, columns: tuple[tuple[str, str], ...], values: dict[str, Any], n: int) -> None:
    """A temporary table of ``columns`` filled with ``n`` rows (dropped by the caller)."""
    body = ", ".join(f"{column} {pg_type} NOT NULL" for column, pg_type in columns)
    db.execute(text(f"CREATE TEMPORARY TABLE {name} ({body}) ON COMMIT DROP"))
    binary.copy_in(name, columns, values, n)


def write_entries(generation_id: int, previous_id: int | None) -> int:
    """Rank the staged eligible candidates on every board into the generation's partition.

    Runs in the caller's transaction (the build), after
    :func:`models.leaderboards.eligibility.stage_candidates`: the partition exists for
    others only once that commits, and its generation is not active until the swap.
    Returns how many entries were written.
    """
    table = partition_name(generation_id)
    g = int(generation_id)
    db.execute(
        text(
            f"CREATE TABLE {table} (LIKE leaderboard_entries INCLUDING DEFAULTS, "
            f"CONSTRAINT ck_{table}_generation CHECK (generation_id = {g}))"
        )
    )
    snapshots, rows, versions = load_snapshots()
    ranked = rank_boards(snapshots)
    _stage(
        RANKS,
        _RANK_COLUMNS,
        {
            "board": ranked.board,
            "rank": ranked.rank,
            "k": snapshots.k[ranked.row],
            "instrument_rank": ranked.instrument_rank,
            "strategy_rank": ranked.strategy_rank,
            "previous_rank": previous_ranks(previous_id, ranked, snapshots),
            "score": ranked.score,
        },
        len(ranked.rank),
    )
    components: dict[str, Any] = {name: rows[name] for name, _ in _COMPONENT_COLUMNS}
    for name in _FIGURES:  # the components show finite figures or nothing
        figure = rows[name].astype(np.float64)
        components[name] = np.where(np.isfinite(figure), figure, np.nan)
    _stage(COMPONENTS, _COMPONENT_COLUMNS, components, len(rows))
    params = {
        "g": g,
        "formula": FORMULA_VERSION,
        "board_periods": [period for period, _ in BOARDS],
        "board_metrics": [metric for _, metric in BOARDS],
        "versions": versions,
    }
    written = cast(CursorResult[Any], db.execute(text(_FILL.format(table=table)), params)).rowcount
    # Indexes matching the parent's, built in bulk; ATTACH adopts them instead of building.
    db.execute(text(f"ALTER TABLE {table} ADD PRIMARY KEY (generation_id, period, metric, rank)"))
    db.execute(text(f"CREATE INDEX ON {table} (generation_id, bot_id)"))
    db.execute(
        text(f"ALTER TABLE leaderboard_entries ATTACH PARTITION {table} FOR VALUES IN ({g})")
    )
    # Statistics now, not when autovacuum gets to it: without them the board reads and the
    # next build's join to this generation plan badly (measured: minutes). Only the
    # columns that reads filter and join on; generation_id included (without it a board
    # page planned right after a build took 32 ms instead of under 2).
    columns = "generation_id, period, metric, rank, bot_id, owner_id, instrument, strategy"
    db.execute(text(f"ANALYZE {table} ({columns})"))
    db.execute(text(f"DROP TABLE {RANKS}, {COMPONENTS}"))
    return int(written)


def drop_partitions(generation_ids: Iterable[int]) -> None:
    """Drop the partitions of pruned generations (a missing one is fine)."""
    for generation_id in generation_ids:
        db.execute(text(f"DROP TABLE IF EXISTS {partition_name(generation_id)}"))
