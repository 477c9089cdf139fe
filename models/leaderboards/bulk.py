"""The bulk reads and writes of a recompute: previous ranks, entries by COPY, exclusions.

A recompute for 10,000 bots writes 160,000 entries; these paths use a plain DBAPI cursor
and one COPY text block instead of ORM rows (ARCHITECTURE.md, performance notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import text

from models.db import session as db
from models.leaderboards.eligibility import Candidate
from models.leaderboards.ranking import Placing

# (period, metric, bot id as text) -> rank: text keys hash in C, UUIDs in Python.
PreviousRanks = dict[tuple[str, str, str], int]
NULL = "\\N"  # COPY's text form of NULL


def _raw_connection() -> Any:
    raw = db.connection().connection.driver_connection
    if raw is None:  # pragma: no cover - a live session always has a DBAPI connection
        raise RuntimeError("no database connection")
    return raw


def previous_ranks(generation_id: int | None) -> PreviousRanks:
    """(period, metric, bot) -> rank in ``generation_id`` (a plain cursor: 160,000 rows)."""
    if generation_id is None:
        return {}
    with _raw_connection().cursor() as cursor:
        cursor.execute(
            "SELECT period, metric, bot_id::text, rank FROM leaderboard_entries "
            "WHERE generation_id = %s",
            (generation_id,),
        )
        return {(period, metric, bot): rank for period, metric, bot, rank in cursor.fetchall()}


_COLUMNS = (
    "generation_id, period, metric, rank, bot_id, owner_id, run_id, instrument, strategy, "
    "instrument_rank, strategy_rank, score, components, previous_rank"
)


def copy_entries(generation_id: int, placings: Sequence[Placing], previous: PreviousRanks) -> None:
    """All entries of a generation in one COPY (the fast bulk form; docs/performance.md).

    The rows go as one text block; the parts that repeat (a bot's ids, a period's
    components) are formatted once. repr() round-trips every float.
    """
    g = str(generation_id)
    # Keyed by the identity of the bot's UUID object (shared by all its placings): an int
    # hashes in C, a UUID in Python, and this loop runs 160,000 times for 10,000 bots.
    bots: dict[int, tuple[str, str]] = {}
    texts: dict[str, str] = {}
    lines = []
    for p in placings:
        bot = bots.get(id(p.bot_id))
        if bot is None:
            key = str(p.bot_id)
            bot = (key, f"{key}\t{p.owner_id}\t{p.run_id}\t{p.instrument}\t{p.strategy}")
            bots[id(p.bot_id)] = bot
        key, who = bot
        components = texts.get(p.components)
        if components is None:
            components = texts[p.components] = p.components.replace("\\", "\\\\")
        prev = previous.get((p.period, p.metric, key))
        lines.append(
            f"{g}\t{p.period}\t{p.metric}\t{p.rank}\t{who}\t{p.instrument_rank}\t"
            f"{p.strategy_rank}\t{p.score!r}\t{components}\t"
            f"{prev if prev is not None else NULL}\n"
        )
    statement = f"COPY leaderboard_entries ({_COLUMNS}) FROM STDIN"
    with _raw_connection().cursor() as cursor, cursor.copy(statement) as copy:
        copy.write("".join(lines))


def insert_exclusions(generation_id: int, excluded: Sequence[Candidate]) -> None:
    """The left-out bots of a generation with their reasons and detail (one statement)."""
    if not excluded:
        return
    db.execute(
        text(
            """
            INSERT INTO leaderboard_exclusions (generation_id, bot_id, reasons, detail)
            SELECT :g, b, CAST(r AS jsonb), CAST(d AS jsonb)
            FROM unnest(CAST(:bots AS uuid[]), CAST(:reasons AS text[]), CAST(:details AS text[]))
                 AS x(b, r, d)
            """
        ),
        {
            "g": generation_id,
            "bots": [c.bot_id for c in excluded],
            "reasons": [_json(c.reasons) for c in excluded],
            "details": [_json(c.detail) for c in excluded],
        },
    )


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
