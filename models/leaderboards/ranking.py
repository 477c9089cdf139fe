"""The ranking formula (public and versioned): what each board sorts on and how ties break.

Formula 1 (docs/leaderboards.md#formula): a board is a period and a metric; its score is
the metric of the bot's snapshot for that period (``return`` is the period's total
return). Only eligible bots with a finite score are ranked. Higher is better; ties go to
the longer track (days tracked in the period), then the older bot, then the smaller bot
id, so the same inputs always give the same board. Instrument and strategy ranks are the
same order within the bot's instrument and strategy family.

:func:`rank_boards` applies it to every board at once with numpy (one ``lexsort`` of all
entries; no loop per board or per bot): this module is the formula's whole definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.leaderboards.tables import BOARD_METRICS
from models.performance.tables import PERIODS

FORMULA_VERSION = "1"
# Which snapshot column (run_performance) each board metric ranks on.
SCORE_COLUMNS = {"return": "total_return", "sharpe": "sharpe", "psr": "psr", "calmar": "calmar"}
# Boards are numbered period-major: board = period index * 4 + metric index.
BOARDS = [(period, metric) for period in PERIODS for metric in BOARD_METRICS]

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Snapshots:
    """The snapshots of eligible bots, one row per (bot, period), as the formula reads them.

    ``k`` orders bots by id (the last tie-break); ``created`` is the bot's creation time
    in microseconds; ``instrument`` and ``strategy`` are group codes; ``scores`` maps each
    metric of BOARD_METRICS to its values (NaN where the snapshot has none).
    """

    k: Ints
    period: Ints
    days_tracked: Floats
    created: Ints
    instrument: Ints
    strategy: Ints
    scores: dict[str, Floats]


@dataclass(frozen=True)
class Ranked:
    """Every entry of every board, in (board, rank) order; ``row`` indexes the Snapshots."""

    board: Ints
    rank: Ints
    row: Ints
    instrument_rank: Ints
    strategy_rank: Ints
    score: Floats


def _ranks_within(groups: tuple[Ints, ...], order: Ints) -> Ints:
    """1-based position of each element in its group, groups taken in ``order``.

    ``order`` must list the elements group by group (sorted on ``groups``); the result is
    indexed like the elements themselves.
    """
    n = len(order)
    ranks = np.empty(n, dtype=np.int64)
    if n == 0:
        return ranks
    new_group = np.zeros(n, dtype=bool)
    new_group[0] = True
    for key in groups:
        sorted_key = key[order]
        new_group[1:] |= sorted_key[1:] != sorted_key[:-1]
    heads = np.flatnonzero(new_group)
    position = np.arange(n, dtype=np.int64)
    ranks[order] = position - np.repeat(heads, np.diff(np.append(heads, n))) + 1
    return ranks


def rank_boards(snapshots: Snapshots) -> Ranked:
    """Formula 1 on all 16 boards: overall, instrument and strategy ranks of every entry."""
    rows_parts, board_parts, score_parts = [], [], []
    for m, metric in enumerate(BOARD_METRICS):
        score = snapshots.scores[metric]
        ranked = np.flatnonzero(np.isfinite(score))
        rows_parts.append(ranked)
        board_parts.append(snapshots.period[ranked] * len(BOARD_METRICS) + m)
        score_parts.append(score[ranked])
    row = np.concatenate(rows_parts).astype(np.int64)
    board = np.concatenate(board_parts).astype(np.int64)
    score = np.concatenate(score_parts)
    # lexsort's last key is the primary one: board, score desc, days desc, older, smaller id.
    order = np.lexsort(
        (
            snapshots.k[row],
            snapshots.created[row],
            -snapshots.days_tracked[row],
            -score,
            board,
        )
    )
    row, board, score = row[order], board[order], score[order]
    identity = np.arange(len(row), dtype=np.int64)
    rank = _ranks_within((board,), identity)
    instrument = snapshots.instrument[row]
    strategy = snapshots.strategy[row]
    by_instrument = np.lexsort((rank, instrument, board))
    by_strategy = np.lexsort((rank, strategy, board))
    return Ranked(
        board=board,
        rank=rank,
        row=row,
        instrument_rank=_ranks_within((board, instrument), by_instrument),
        strategy_rank=_ranks_within((board, strategy), by_strategy),
        score=score,
    )
