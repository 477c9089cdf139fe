"""Telling owners about new top placings when a generation goes live (``leaderboard.placed``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from models.bots.bots import Bot
from models.db import session as db
from models.leaderboards.tables import BOARD_METRICS
from models.people.notifications import notify
from models.performance.tables import PERIODS

PLACED_EVENT = "leaderboard.placed"

# Board by board through the primary key (generation, period, metric, rank): a fresh
# generation has no statistics yet, so the plan must not depend on them.
_NEW_TOP = text(
    """
    WITH boards AS (
        SELECT * FROM unnest(CAST(:periods AS text[]), CAST(:metrics AS text[])) AS b(p, m)
    ), now_top AS (
        SELECT e.bot_id, e.owner_id, e.period, e.metric, e.rank
        FROM boards JOIN leaderboard_entries e
          ON e.generation_id = :g AND e.period = boards.p AND e.metric = boards.m
         AND e.rank <= :n
    ), before_top AS (
        SELECT o.bot_id, o.period, o.metric
        FROM boards JOIN leaderboard_entries o
          ON o.generation_id = :p AND o.period = boards.p AND o.metric = boards.m
         AND o.rank <= :n
    )
    SELECT t.bot_id, t.owner_id, t.period, t.metric, t.rank
    FROM now_top t
    LEFT JOIN before_top b USING (bot_id, period, metric)
    WHERE b.bot_id IS NULL
    ORDER BY t.bot_id, t.rank, t.period, t.metric
    """
)


def notify_new_placings(generation_id: int, previous_id: int | None, top_n: int) -> int:
    """One ``leaderboard.placed`` per bot newly in a board's top ``top_n``; how many were sent.

    Every board is a default board (no instrument or strategy filter); a bot already in a
    board's top N in ``previous_id`` is not told about that board again.
    """
    if top_n <= 0:
        return 0
    boards_order = [(period, metric) for period in PERIODS for metric in BOARD_METRICS]
    params = {
        "g": generation_id,
        "p": previous_id if previous_id is not None else -1,
        "n": top_n,
        "periods": [period for period, _ in boards_order],
        "metrics": [metric for _, metric in boards_order],
    }
    rows = db.execute(_NEW_TOP, params).all()
    boards: dict[uuid.UUID, tuple[uuid.UUID, list[dict[str, object]]]] = {}
    for row in rows:
        _, placed = boards.setdefault(row.bot_id, (row.owner_id, []))
        placed.append({"period": row.period, "metric": row.metric, "rank": row.rank})
    if not boards:
        return 0
    names = {
        row.id: row.name
        for row in db.execute(select(Bot.id, Bot.name).where(Bot.id.in_(list(boards))))
    }
    for bot_id, (owner_id, placed) in boards.items():
        notify(
            owner_id,
            PLACED_EVENT,
            {
                "bot_id": str(bot_id),
                "bot_name": names.get(bot_id),
                "generation_id": generation_id,
                "best_rank": min(int(str(p["rank"])) for p in placed),
                "top_n": top_n,
                "boards": placed,
            },
        )
    return len(boards)
