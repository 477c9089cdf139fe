"""Reading the boards of a generation: a page, the caller's best entry, the preview.

Entries are read with the bot's and owner's current state: a bot that has since become
private, unlisted or hidden, or whose owner is no longer active, is left out at once
(its rank stays a gap until the next generation), so such a bot appears nowhere.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text

from models.db import session as db
from models.leaderboards.tables import (
    BOARD_METRICS,
    COMPONENT_COLUMNS,
    LeaderboardGeneration,
    entry_components,
)
from models.people.preferences import default_settings
from models.performance.tables import PERIODS

MAX_LIMIT = 100


@dataclass(frozen=True)
class Board:
    """Which board: a period, a metric and optional instrument and strategy filters."""

    period: str
    metric: str
    instrument: str | None = None
    strategy: str | None = None

    @property
    def rank_column(self) -> str:
        """The stored rank a board shows (both filters: counted at read time instead)."""
        if self.instrument is not None and self.strategy is None:
            return "instrument_rank"
        if self.strategy is not None and self.instrument is None:
            return "strategy_rank"
        return "rank"


def active_generation() -> LeaderboardGeneration | None:
    """The active generation, or None before the first recompute."""
    return db.scalar(select(LeaderboardGeneration).where(LeaderboardGeneration.status == "active"))


def generation_exists(generation_id: int) -> LeaderboardGeneration | None:
    """A generation that is still kept (active or superseded), or None."""
    found = db.get(LeaderboardGeneration, generation_id)
    if found is None or found.status not in ("active", "superseded"):
        return None
    return found


# The visible rows of one board with everything an entry shows. ``pos`` is what the page
# is ordered and cursored by: always the overall rank, so every board, filtered or not, is
# read through the primary key in order (a filtered rank follows the overall order).
# ``board_rank`` is the rank shown (the filtered rank when filtered; with both filters,
# counted among the filtered rows).
_ROWS = """
SELECT * FROM (
  SELECT e.rank, e.instrument_rank, e.strategy_rank, e.previous_rank, e.score,
         {components}, e.bot_id, e.instrument, e.strategy, e.period, e.metric,
         e.rank AS pos,
         {board_rank} AS board_rank,
         b.name AS bot_name, b.timeframe, u.username, u.display_name,
         COALESCE(s.document ->> 'profile_visibility', :profile_default) = 'public'
             AS profile_public
  FROM leaderboard_entries e
  JOIN bots b ON b.id = e.bot_id
  JOIN users u ON u.id = e.owner_id
  LEFT JOIN account_settings s ON s.user_id = e.owner_id
  WHERE e.generation_id = :g AND e.period = :period AND e.metric = :metric
    AND b.visibility = 'public' AND b.hidden_at IS NULL
    AND u.is_active AND u.deletion_requested_at IS NULL AND u.erased_at IS NULL
    {filters}
) rows
"""


def _entry(row: Any) -> dict[str, Any]:
    """A board row as a dict, its component columns folded into ``components``."""
    values = dict(row._mapping)
    values["components"] = entry_components(values)
    for name in COMPONENT_COLUMNS:
        values.pop(name)
    return values


def _board_sql(board: Board) -> str:
    filters = ""
    if board.instrument is not None:
        filters += " AND e.instrument = :instrument"
    if board.strategy is not None:
        filters += " AND e.strategy = :strategy"
    both = board.instrument is not None and board.strategy is not None
    board_rank = "row_number() OVER (ORDER BY e.rank)" if both else f"e.{board.rank_column}"
    components = ", ".join(f"e.{name}" for name in COMPONENT_COLUMNS)
    return _ROWS.format(board_rank=board_rank, filters=filters, components=components)


def _params(generation_id: int, board: Board) -> dict[str, Any]:
    return {
        "g": generation_id,
        "profile_default": default_settings()["profile_visibility"],
        "period": board.period,
        "metric": board.metric,
        "instrument": board.instrument,
        "strategy": board.strategy,
    }


def board_rows(
    generation_id: int, board: Board, after: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` visible rows of a board whose position is after ``after``, in order."""
    sql = _board_sql(board) + " WHERE pos > :after ORDER BY pos LIMIT :limit"
    params = _params(generation_id, board) | {
        "after": after if after is not None else 0,
        "limit": min(limit, MAX_LIMIT + 1),
    }
    return [_entry(row) for row in db.execute(text(sql), params)]


def best_entry_of(generation_id: int, board: Board, owner_id: uuid.UUID) -> dict[str, Any] | None:
    """The owner's best visible row on the board, or None."""
    sql = _board_sql(board).replace(
        "WHERE e.generation_id",
        # Through the owner's bots: entries are indexed by bot, not by owner.
        "WHERE e.bot_id IN (SELECT id FROM bots WHERE owner_id = :owner) AND e.generation_id",
    )
    if board.instrument is not None and board.strategy is not None:
        # The both-filters rank counts every owner's rows: filter the owner afterwards.
        mine = " WHERE rows.bot_id IN (SELECT id FROM bots WHERE owner_id = :owner)"
        sql += mine
    row = db.execute(
        text(sql + " ORDER BY pos LIMIT 1"), _params(generation_id, board) | {"owner": owner_id}
    ).first()
    return _entry(row) if row is not None else None


def preview_rows(generation_id: int, top: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The top ``top`` visible rows of every default board, by (period, metric)."""
    boards: dict[tuple[str, str], list[dict[str, Any]]] = {
        (period, metric): [] for period in PERIODS for metric in BOARD_METRICS
    }
    # Over-fetch a little per board: rows left out at read time leave gaps in the ranks.
    sql = (
        _board_sql(Board("x", "x")).replace(
            "e.period = :period AND e.metric = :metric", "e.rank <= :reach"
        )
        + " ORDER BY period, metric, pos"
    )
    for row in db.execute(
        text(sql),
        {
            "g": generation_id,
            "reach": top * 3,
            "profile_default": default_settings()["profile_visibility"],
        },
    ):
        rows = boards.get((row.period, row.metric))
        if rows is not None and len(rows) < top:
            rows.append(_entry(row))
    return boards


@dataclass(frozen=True)
class BotStanding:
    """A bot's placings in a generation, or why it is on no board."""

    generation_id: int | None
    generated_at: datetime | None
    placings: list[dict[str, Any]]
    reasons: list[str]
    detail: dict[str, Any]


def bot_standing(generation: LeaderboardGeneration | None, bot_id: uuid.UUID) -> BotStanding:
    """Where the bot is ranked in ``generation``, or the reasons it recorded for leaving it out.

    A bot the generation did not consider (not public then) gets no recorded reasons: the
    caller adds what holds now.
    """
    if generation is None:
        return BotStanding(None, None, [], [], {})
    placings = [
        dict(row._mapping)
        for row in db.execute(
            text(
                "SELECT period, metric, rank, instrument_rank, strategy_rank, score "
                "FROM leaderboard_entries WHERE generation_id = :g AND bot_id = :b"
            ),
            {"g": generation.id, "b": bot_id},
        )
    ]
    order = {(p, m): i for i, (p, m) in enumerate((p, m) for p in PERIODS for m in BOARD_METRICS)}
    placings.sort(key=lambda p: order.get((p["period"], p["metric"]), 99))
    excluded = db.execute(
        text(
            "SELECT reasons, detail FROM leaderboard_exclusions "
            "WHERE generation_id = :g AND bot_id = :b"
        ),
        {"g": generation.id, "b": bot_id},
    ).first()
    reasons = list(excluded.reasons) if excluded is not None else []
    detail = dict(excluded.detail) if excluded is not None else {}
    return BotStanding(generation.id, generation.activated_at, placings, reasons, detail)
