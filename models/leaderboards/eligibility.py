"""Which public bots may be ranked, and why the others may not (docs/leaderboards.md).

A recompute considers every public bot. One that is hidden, has no live run, belongs to
an inactive owner, or whose ``all`` snapshot is missing, too short or has too few trades
is left out with every reason that applies. Among the rest, an owner's bots with the same
strategy configuration (:func:`config_fingerprint`) count once: the longest track record
stays, the others are duplicates of it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import text

from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
from models.bots.strategy_specs import strategy_family
from models.db import raw_connection
from models.db import session as db

REASONS = (
    "not_public",
    "no_live_run",
    "hidden",
    "owner_inactive",
    "too_few_days",
    "too_few_trades",
    "duplicate",
    "no_snapshot",
)


class Snapshot(NamedTuple):
    """The figures of one run's snapshot for one period that the boards rank on."""

    days_tracked: float
    trades: int
    max_drawdown: float
    total_return: float | None
    sharpe: float | None
    psr: float | None
    calmar: float | None
    as_of_ts: int
    metrics_version: str


@dataclass
class Candidate:
    """A public bot as a recompute sees it: identity, grouping keys, snapshots, reasons."""

    bot_id: uuid.UUID
    owner_id: uuid.UUID
    run_id: uuid.UUID | None
    created_at: datetime
    instrument: str
    strategy: str
    fingerprint: str
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        """No reason keeps it off the boards."""
        return not self.reasons

    @property
    def days_all(self) -> float:
        """Days tracked by its whole run (0 without a snapshot)."""
        snap = self.snapshots.get("all")
        return snap.days_tracked if snap is not None else 0.0


def reasons_now(bot: Bot) -> list[str]:
    """What keeps a bot off every board right now, read from its own row.

    The same rules as :func:`apply_rules`, for a bot that a generation did not consider
    or that has changed since.
    """
    reasons = []
    if bot.visibility != "public":
        reasons.append("not_public")
    if bot.status not in ACTIVE_BOT_STATUSES:
        reasons.append("no_live_run")
    if bot.hidden_at is not None:
        reasons.append("hidden")
    return reasons


def config_fingerprint(
    strategy: dict[str, Any], risk: dict[str, Any], symbol: str, timeframe: str
) -> str:
    """sha256 of the canonical JSON of what makes two bots trade identically."""
    document = {"strategy": strategy, "risk": risk, "symbol": symbol, "timeframe": timeframe}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# Public bots with their owner's state and their latest run (current_run's order).
_CANDIDATES = text(
    """
    SELECT b.id, b.owner_id, b.created_at, b.status, b.hidden_at, b.strategy, b.risk,
           b.timeframe, i.symbol,
           (u.is_active AND u.deletion_requested_at IS NULL AND u.erased_at IS NULL) AS owner_ok,
           r.id AS run_id, r.status AS run_status
    FROM bots b
    JOIN instruments i ON i.id = b.instrument_id
    JOIN users u ON u.id = b.owner_id
    LEFT JOIN LATERAL (
        SELECT id, status FROM bot_runs
        WHERE bot_id = b.id ORDER BY started_at DESC, created_at DESC LIMIT 1
    ) r ON true
    WHERE b.visibility = 'public'
    """
)
# Read by a plain DBAPI cursor: 40,000 rows for 10,000 bots, as tuples in Snapshot's order.
_SNAPSHOTS = """
    SELECT run_id, period, days_tracked, trades, max_drawdown, total_return, sharpe, psr,
           calmar, as_of_ts, metrics_version
    FROM run_performance WHERE run_id = ANY(%s)
"""


def load_candidates() -> list[Candidate]:
    """Every public bot with its latest run's snapshots (two queries), reasons not yet set."""
    candidates: list[Candidate] = []
    flags: dict[uuid.UUID, tuple[bool, bool, bool]] = {}
    for row in db.execute(_CANDIDATES):
        live = row.status in ACTIVE_BOT_STATUSES and row.run_status in ACTIVE_BOT_STATUSES
        candidate = Candidate(
            bot_id=row.id,
            owner_id=row.owner_id,
            run_id=row.run_id,
            created_at=row.created_at,
            instrument=row.symbol,
            strategy=strategy_family(row.strategy),
            fingerprint=config_fingerprint(row.strategy, row.risk, row.symbol, row.timeframe),
        )
        flags[row.id] = (live, row.hidden_at is not None, bool(row.owner_ok))
        candidates.append(candidate)
    by_run = {c.run_id: c for c in candidates if c.run_id is not None}
    if by_run:
        with raw_connection().cursor() as cursor:
            cursor.execute(_SNAPSHOTS, (list(by_run),))
            for run_id, period, *figures in cursor.fetchall():
                by_run[run_id].snapshots[period] = Snapshot(*figures)
    for candidate in candidates:
        live, hidden, owner_ok = flags[candidate.bot_id]
        candidate.detail["live"] = live
        candidate.detail["hidden"] = hidden
        candidate.detail["owner_ok"] = owner_ok
    return candidates


def apply_rules(candidates: list[Candidate], min_days: int, min_trades: int) -> None:
    """Set each candidate's reasons and detail, then mark duplicates (in place)."""
    for candidate in candidates:
        state = candidate.detail
        live, hidden, owner_ok = state.pop("live"), state.pop("hidden"), state.pop("owner_ok")
        reasons = candidate.reasons
        if not live:
            reasons.append("no_live_run")
        if hidden:
            reasons.append("hidden")
        if not owner_ok:
            reasons.append("owner_inactive")
        snap = candidate.snapshots.get("all")
        if snap is None:
            reasons.append("no_snapshot")
            continue
        state.update(
            days_tracked=snap.days_tracked,
            min_days=min_days,
            trades=snap.trades,
            min_trades=min_trades,
        )
        if snap.days_tracked < min_days:
            reasons.append("too_few_days")
        if snap.trades < min_trades:
            reasons.append("too_few_trades")
    mark_duplicates(candidates)


def mark_duplicates(candidates: list[Candidate]) -> None:
    """Among otherwise eligible bots, keep one per (owner, fingerprint): the longest record.

    Longest ``all`` track first, then the older bot, then the smaller id; the others get
    ``duplicate`` with ``duplicate_of`` naming the one kept.
    """
    groups: dict[tuple[uuid.UUID, str], list[Candidate]] = {}
    for candidate in candidates:
        if candidate.eligible:
            groups.setdefault((candidate.owner_id, candidate.fingerprint), []).append(candidate)
    for group in groups.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda c: (-c.days_all, c.created_at, c.bot_id))
        kept = group[0]
        for other in group[1:]:
            other.reasons.append("duplicate")
            other.detail["duplicate_of"] = str(kept.bot_id)


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
