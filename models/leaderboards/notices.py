"""Telling owners about new top placings when a generation goes live (``leaderboard.placed``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from models.bots.bots import Bot
from models.db import session as db
from models.people.notifications import notify

PLACED_EVENT = "leaderboard.placed"

_NEW_TOP = text(
    """
    SELECT e.bot_id, e.owner_id, e.period, e.metric, e.rank
    FROM leaderboard_entries e
    WHERE e.generation_id = :g AND e.rank <= :n
      AND NOT EXISTS (
          SELECT 1 FROM leaderboard_entries o
          WHERE o.generation_id = :p AND o.period = e.period AND o.metric = e.metric
            AND o.bot_id = e.bot_id AND o.rank <= :n)
    ORDER BY e.bot_id, e.rank, e.period, e.metric
    """
)


def notify_new_placings(generation_id: int, previous_id: int | None, top_n: int) -> int:
    """One ``leaderboard.placed`` per bot newly in a board's top ``top_n``; how many were sent.

    Every board is a default board (no instrument or strategy filter); a bot already in a
    board's top N in ``previous_id`` is not told about that board again.
    """
    if top_n <= 0:
        return 0
    rows = db.execute(
        _NEW_TOP,
        {"g": generation_id, "p": previous_id if previous_id is not None else -1, "n": top_n},
    ).all()
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
