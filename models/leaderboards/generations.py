"""Recomputing the boards: build a generation, swap it in atomically, prune, notify.

1. Build (one transaction, under an advisory lock so builds never overlap): a
   ``building`` generation, its entries by one COPY, its exclusions, ``previous_rank``
   from the active generation. Readers keep reading the active generation meanwhile.
2. Swap (one short transaction, same lock): the active generation becomes ``superseded``
   and the new one ``active``; the owners of new top-N placings are notified in it, so a
   notification exists exactly when its board does. A generation older than the active
   one (a slower recompute that lost the race) is never activated.
3. Prune: generations beyond the newest ``keep`` are deleted (entries cascade).
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text, update

from models.bots.bots import Bot
from models.db import session as db
from models.leaderboards.eligibility import Candidate, apply_rules, load_candidates
from models.leaderboards.ranking import FORMULA_VERSION, Placing, rank_boards
from models.leaderboards.tables import LeaderboardGeneration
from models.people.notifications import notify

# pg_advisory_xact_lock key of leaderboard builds and swaps ("LBRD" in ASCII).
LOCK_KEY = 0x4C425244
PLACED_EVENT = "leaderboard.placed"
# Where a test may hold a recompute: inside the build transaction after the entries are
# written ("built"), and between the build's commit and the swap ("before_swap").
Hook = Callable[[str], None]
PreviousRanks = dict[tuple[str, str, uuid.UUID], int]
NULL = "\\N"  # COPY's text form of NULL


@dataclass(frozen=True)
class Recomputed:
    """What one recompute did."""

    generation_id: int
    activated: bool
    bots_considered: int
    entries: int
    excluded: int
    notified: int
    pruned: int


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a build makes its few hundred thousand tuples.

    They are all alive until the build ends, so collecting only rescans them again and
    again (about 40% of the ranking's time for 10,000 bots).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _lock() -> None:
    db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def active_generation_id() -> int | None:
    """The id of the active generation, or None before the first one."""
    found = db.scalar(
        select(LeaderboardGeneration.id).where(LeaderboardGeneration.status == "active")
    )
    return int(found) if found is not None else None


def _raw_connection() -> Any:
    raw = db.connection().connection.driver_connection
    if raw is None:  # pragma: no cover - a live session always has a DBAPI connection
        raise RuntimeError("no database connection")
    return raw


def _previous_ranks(generation_id: int | None) -> PreviousRanks:
    """(period, metric, bot) -> rank in ``generation_id`` (a plain cursor: 160,000 rows)."""
    if generation_id is None:
        return {}
    with _raw_connection().cursor() as cursor:
        cursor.execute(
            "SELECT period, metric, bot_id, rank FROM leaderboard_entries WHERE generation_id = %s",
            (generation_id,),
        )
        return {(period, metric, bot): rank for period, metric, bot, rank in cursor.fetchall()}


_COLUMNS = (
    "generation_id, period, metric, rank, bot_id, owner_id, run_id, instrument, strategy, "
    "instrument_rank, strategy_rank, score, components, previous_rank"
)


def _copy_entries(generation_id: int, placings: Sequence[Placing], previous: PreviousRanks) -> None:
    """All entries of a generation in one COPY (the fast bulk form; docs/performance.md).

    The rows go as one text block; the parts that repeat (a bot's ids, a period's
    components) are formatted once. repr() round-trips every float.
    """
    g = str(generation_id)
    ids: dict[uuid.UUID, str] = {}
    texts: dict[str, str] = {}
    lines = []
    for p in placings:
        who = ids.get(p.bot_id)
        if who is None:
            who = ids[p.bot_id] = (
                f"{p.bot_id}\t{p.owner_id}\t{p.run_id}\t{p.instrument}\t{p.strategy}"
            )
        components = texts.get(p.components)
        if components is None:
            components = texts[p.components] = p.components.replace("\\", "\\\\")
        prev = previous.get((p.period, p.metric, p.bot_id))
        lines.append(
            f"{g}\t{p.period}\t{p.metric}\t{p.rank}\t{who}\t{p.instrument_rank}\t"
            f"{p.strategy_rank}\t{p.score!r}\t{components}\t"
            f"{prev if prev is not None else NULL}\n"
        )
    statement = f"COPY leaderboard_entries ({_COLUMNS}) FROM STDIN"
    with _raw_connection().cursor() as cursor, cursor.copy(statement) as copy:
        copy.write("".join(lines))


def _insert_exclusions(generation_id: int, excluded: Sequence[Candidate]) -> None:
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


def build_generation(
    now: datetime, min_days: int, min_trades: int, job_id: str | None, hook: Hook | None = None
) -> tuple[LeaderboardGeneration, int | None, int]:
    """Write a whole ``building`` generation and commit it.

    Returns the generation, the active generation's id it compared ranks with, and how
    many bots it left out.
    """
    _lock()
    previous_id = active_generation_id()
    generation = LeaderboardGeneration(
        status="building", formula_version=FORMULA_VERSION, job_id=job_id, started_at=now
    )
    db.add(generation)
    db.flush()
    with _collector_paused():
        candidates = load_candidates()
        apply_rules(candidates, min_days, min_trades)
        placings = rank_boards(candidates)
        _copy_entries(generation.id, placings, _previous_ranks(previous_id))
    excluded = [c for c in candidates if not c.eligible]
    _insert_exclusions(generation.id, excluded)
    generation.bots_considered = len(candidates)
    generation.entries = len(placings)
    generation.finished_at = now
    db.flush()
    if hook is not None:
        hook("built")
    db.commit()
    return generation, previous_id, len(excluded)


def _refill_previous_ranks(generation_id: int, previous_id: int | None) -> None:
    """previous_rank against ``previous_id`` (when another swap came between build and swap)."""
    db.execute(
        text(
            """
            UPDATE leaderboard_entries e SET previous_rank = (
                SELECT o.rank FROM leaderboard_entries o
                WHERE o.generation_id = :p AND o.period = e.period AND o.metric = e.metric
                  AND o.bot_id = e.bot_id)
            WHERE e.generation_id = :g
            """
        ),
        {"g": generation_id, "p": previous_id if previous_id is not None else -1},
    )


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


def swap_generation(
    generation: LeaderboardGeneration, previous_id: int | None, now: datetime, top_n: int
) -> tuple[bool, int]:
    """Make ``generation`` the active one in one short transaction; (activated, notified)."""
    _lock()
    active_id = active_generation_id()
    if active_id is not None and active_id > generation.id:
        # A recompute that started later has already been activated: never go back in time.
        db.execute(
            update(LeaderboardGeneration)
            .where(LeaderboardGeneration.id == generation.id)
            .values(status="superseded")
        )
        db.commit()
        return False, 0
    if active_id != previous_id:
        _refill_previous_ranks(generation.id, active_id)
    if active_id is not None:
        db.execute(
            update(LeaderboardGeneration)
            .where(LeaderboardGeneration.id == active_id)
            .values(status="superseded")
        )
    db.execute(
        update(LeaderboardGeneration)
        .where(LeaderboardGeneration.id == generation.id)
        .values(status="active", activated_at=now)
    )
    notified = notify_new_placings(generation.id, active_id, top_n)
    db.commit()
    return True, notified


def prune_generations(keep: int) -> int:
    """Delete every generation but the newest ``keep`` and the active one; how many went."""
    rows = db.execute(
        text(
            """
            DELETE FROM leaderboard_generations WHERE id IN (
                SELECT id FROM leaderboard_generations
                WHERE status <> 'active' ORDER BY id DESC OFFSET :keep)
            RETURNING id
            """
        ),
        {"keep": max(keep - 1, 0)},
    ).all()
    db.commit()
    return len(rows)


def record_failure(now: datetime, job_id: str | None) -> int:
    """A ``failed`` generation row saying that a recompute at ``now`` did not finish."""
    generation = LeaderboardGeneration(
        status="failed",
        formula_version=FORMULA_VERSION,
        job_id=job_id,
        started_at=now,
        finished_at=now,
    )
    db.add(generation)
    db.commit()
    return generation.id


def recompute(
    now: datetime,
    *,
    min_days: int,
    min_trades: int,
    keep: int,
    top_n: int,
    job_id: str | None = None,
    hook: Hook | None = None,
) -> Recomputed:
    """Build, swap in and prune one generation of every board (see the module docstring)."""
    try:
        generation, previous_id, excluded = build_generation(
            now, min_days, min_trades, job_id, hook
        )
    except Exception:
        db.rollback()
        record_failure(now, job_id)
        raise
    if hook is not None:
        hook("before_swap")
    activated, notified = swap_generation(generation, previous_id, now, top_n)
    pruned = prune_generations(keep)
    return Recomputed(
        generation_id=generation.id,
        activated=activated,
        bots_considered=generation.bots_considered,
        entries=generation.entries,
        excluded=excluded,
        notified=notified,
        pruned=pruned,
    )
