"""Recomputing the boards: build a generation, swap it in atomically, prune, notify.

1. Build (one transaction, under an advisory lock so builds never overlap): a
   ``building`` generation, its entries as one new partition ranked by Postgres
   (models/leaderboards/partitions.py), its exclusions, ``previous_rank`` from the active
   generation. Readers keep reading the active generation meanwhile.
2. Swap (one short transaction, same lock): the active generation becomes ``superseded``
   and the new one ``active``; the owners of new top-N placings are notified in it, so a
   notification exists exactly when its board does. A generation older than the active
   one (a slower recompute that lost the race) is never activated.
3. Prune: generations beyond the newest ``keep`` are deleted with their partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update

from models.db import session as db
from models.leaderboards.eligibility import drop_candidates, insert_exclusions, stage_candidates
from models.leaderboards.notices import notify_new_placings
from models.leaderboards.partitions import drop_partitions, write_entries
from models.leaderboards.preview_cache import announce_active_generation
from models.leaderboards.ranking import FORMULA_VERSION
from models.leaderboards.tables import LeaderboardGeneration

# pg_advisory_xact_lock key of leaderboard builds and swaps ("LBRD" in ASCII).
LOCK_KEY = 0x4C425244
# Where a test may hold a recompute: inside the build transaction after the entries are
# written ("built"), and between the build's commit and the swap ("before_swap").
Hook = Callable[[str], None]


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


def _lock() -> None:
    db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def active_generation_id() -> int | None:
    """The id of the active generation, or None before the first one."""
    found = db.scalar(
        select(LeaderboardGeneration.id).where(LeaderboardGeneration.status == "active")
    )
    return int(found) if found is not None else None


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
    # A crash before this commit reaches disk loses only the build; the swap's commit,
    # which is synchronous, flushes the build's WAL before its own. No JIT: the build's
    # statements are planned as large enough to compile, which costs more than they run.
    db.execute(text("SET LOCAL synchronous_commit = off"))
    db.execute(text("SET LOCAL jit = off"))
    considered = stage_candidates(min_days, min_trades)
    entries = write_entries(generation.id, previous_id)
    insert_exclusions(generation.id)
    drop_candidates()
    generation.bots_considered = considered.bots
    generation.entries = entries
    generation.finished_at = now
    db.flush()
    if hook is not None:
        hook("built")
    db.commit()
    return generation, previous_id, considered.excluded


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
    drop_partitions(row.id for row in rows)
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
    if activated:
        announce_active_generation(generation.id)  # a preview hit asks Redis only
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
