"""Which public bots may be ranked, and why the others may not (docs/leaderboards.md).

A recompute considers every public bot. One that is hidden, has no live run, belongs to
an inactive owner, or whose ``all`` snapshot is missing, too short or has too few trades
is left out with every reason that applies. Among the rest, an owner's bots with the same
trading configuration (strategy, risk, symbol and timeframe, compared as JSON values)
count once: the longest track record stays, the others are duplicates of it.

The rules run in Postgres, over a temporary table of candidates that lives until the build
commits (:func:`stage_candidates`): no bot travels through Python. Each candidate gets
``k``, its position in bot id order, which the ranking uses as the final tie-break, and
numbers for its instrument and strategy family, which group the filtered ranks.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import text

from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
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


def reasons_now(bot: Bot) -> list[str]:
    """What keeps a bot off every board right now, read from its own row.

    The same rules as :func:`stage_candidates`, for a bot that a generation did not
    consider or that has changed since.
    """
    reasons = []
    if bot.visibility != "public":
        reasons.append("not_public")
    if bot.status not in ACTIVE_BOT_STATUSES:
        reasons.append("no_live_run")
    if bot.hidden_at is not None:
        reasons.append("hidden")
    return reasons


# Every public bot with its latest run (current_run's order), the owner's state and the
# run's ``all`` snapshot; ``reasons`` lists every rule it fails, in REASONS' order of
# checking. A missing snapshot stops the checks that need one (their comparisons are NULL).
_STAGE = """
CREATE TEMPORARY TABLE leaderboard_candidates ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY b.id) - 1)::int4 AS k,
       b.id AS bot_id, b.owner_id, r.id AS run_id, b.created_at,
       i.symbol AS instrument,
       COALESCE(NULLIF(b.strategy ->> 'template', ''), 'rules') AS strategy,
       dense_rank() OVER (ORDER BY i.symbol)::int4 AS instrument_code,
       dense_rank() OVER (ORDER BY COALESCE(NULLIF(b.strategy ->> 'template', ''), 'rules'))::int4
           AS strategy_code,
       b.strategy AS config, b.risk, b.timeframe,
       s.days_tracked,
       array_remove(ARRAY[
           CASE WHEN NOT COALESCE(b.status = ANY(:active) AND r.status = ANY(:active), false)
                THEN 'no_live_run' END,
           CASE WHEN b.hidden_at IS NOT NULL THEN 'hidden' END,
           CASE WHEN NOT (u.is_active AND u.deletion_requested_at IS NULL
                          AND u.erased_at IS NULL) THEN 'owner_inactive' END,
           CASE WHEN s.run_id IS NULL THEN 'no_snapshot' END,
           CASE WHEN s.days_tracked < :min_days THEN 'too_few_days' END,
           CASE WHEN s.trades < :min_trades THEN 'too_few_trades' END
       ], NULL) AS reasons,
       CASE WHEN s.run_id IS NULL THEN '{}'::jsonb
            ELSE jsonb_build_object('days_tracked', s.days_tracked, 'min_days', :min_days,
                                    'trades', s.trades, 'min_trades', :min_trades)
       END AS detail
FROM bots b
JOIN instruments i ON i.id = b.instrument_id
JOIN users u ON u.id = b.owner_id
LEFT JOIN LATERAL (
    SELECT id, status FROM bot_runs
    WHERE bot_id = b.id ORDER BY started_at DESC, created_at DESC LIMIT 1
) r ON true
LEFT JOIN run_performance s ON s.run_id = r.id AND s.period = 'all'
WHERE b.visibility = 'public'
"""
# Among the otherwise eligible: per owner and configuration, the longest ``all`` track
# stays (then the older bot, then the smaller id); the others become its duplicates.
# jsonb equality ignores key order and the spelling of numbers (1 = 1.0).
_DUPLICATES = """
UPDATE leaderboard_candidates c
SET reasons = c.reasons || 'duplicate'::text,
    detail = c.detail || jsonb_build_object('duplicate_of', g.kept::text)
FROM (
    SELECT bot_id, first_value(bot_id) OVER (
        PARTITION BY owner_id, config, risk, instrument, timeframe
        ORDER BY days_tracked DESC, created_at, bot_id) AS kept
    FROM leaderboard_candidates WHERE reasons = '{}'
) g
WHERE g.bot_id = c.bot_id AND g.kept <> c.bot_id
"""
_EXCLUDE = """
INSERT INTO leaderboard_exclusions (generation_id, bot_id, reasons, detail)
SELECT :g, bot_id, to_jsonb(reasons), detail FROM leaderboard_candidates WHERE reasons <> '{}'
"""


class Considered(NamedTuple):
    """How many public bots a build considered, and how many of them it left out."""

    bots: int
    excluded: int


def stage_candidates(min_days: int, min_trades: int) -> Considered:
    """The candidates table of this transaction, with reasons and duplicates set."""
    params = {"active": list(ACTIVE_BOT_STATUSES), "min_days": min_days, "min_trades": min_trades}
    db.execute(text(_STAGE), params)
    db.execute(text(_DUPLICATES))
    db.execute(text("ANALYZE leaderboard_candidates (k, bot_id, run_id)"))  # the join keys
    row = db.execute(
        text("SELECT count(*), count(*) FILTER (WHERE reasons <> '{}') FROM leaderboard_candidates")
    ).one()
    return Considered(int(row[0]), int(row[1]))


def insert_exclusions(generation_id: int) -> None:
    """The left-out candidates as the generation's exclusions, reasons and detail."""
    db.execute(text(_EXCLUDE), {"g": generation_id})


def drop_candidates() -> None:
    """Drop the candidates table now (a commit that is really a savepoint keeps it)."""
    db.execute(text("DROP TABLE leaderboard_candidates"))
