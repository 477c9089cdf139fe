"""The feed: public activity of the users someone follows (docs/community.md#the-feed).

Items come from two sources, read in ONE query per page:

- activity records (``activities``) with a verb in :data:`FEED_VERBS`, written by
  ``track()`` after the request that did the thing: ``bot.published`` (object: the bot),
  ``bot.forked`` (object: the fork, ``data.source_bot_id``: the bot forked) and
  ``comment.created`` (object: the comment, ``data.bot_id``);
- leaderboard placings derived from the active generation's ``leaderboard_entries``: a
  followed user's bot newly in a default board's top N (the ``leaderboard.placed`` rule),
  one item per bot at its best rank. They are not activity rows, so they sit in the id
  order right after the last activity recorded before the generation went live.

Every item is checked against what is true now: the bot it shows must be public, not
hidden, and its owner's account active; a comment must be neither hidden nor deleted;
a user the reader blocked, or who blocked the reader, contributes nothing (as actor or
as owner of the bot shown). The followed user's profile must still be public.

The cursor is one integer: an activity's key is ``id * SLOTS``; the placings share the
key range just above their watermark activity (``SLOTS - 1`` at most per generation).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import BigInteger, String

from models.bots.bots import Bot
from models.db import session as db
from models.leaderboards.tables import BOARD_METRICS
from models.market.tables import Instrument
from models.people.preferences import default_settings
from models.performance.tables import PERIODS

FEED_VERBS = ("bot.published", "bot.forked", "comment.created")
PLACED = "leaderboard.placed"
SLOTS = 1024
MAX_PAGE = 100
EXCERPT = 200
FIRST_PAGE = 2**63 - 1
# Activity ids above this would overflow the key (id * SLOTS) in a bigint.
MAX_ACTIVITY_ID = (2**63 - 1) // SLOTS - 1

_UUID_RE = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_FEED = text(
    """
    WITH followees AS (
        SELECT u.id, u.username
        FROM follows f
        JOIN users u ON u.id = f.followee_id
        LEFT JOIN account_settings s ON s.user_id = u.id
        WHERE f.follower_id = :viewer
          AND u.is_active AND u.disabled_at IS NULL
          AND u.deletion_requested_at IS NULL AND u.erased_at IS NULL
          AND coalesce(s.document->>'profile_visibility', :default_visibility) = 'public'
          AND NOT EXISTS (
              SELECT 1 FROM blocks b
              WHERE (b.blocker_id = :viewer AND b.blocked_id = u.id)
                 OR (b.blocker_id = u.id AND b.blocked_id = :viewer))
    ), shown_bots AS NOT MATERIALIZED (
        -- Bots anyone may see in a feed: public, not hidden, owner active, no block.
        SELECT bot.id, bot.owner_id
        FROM bots bot JOIN users o ON o.id = bot.owner_id
        WHERE bot.visibility = 'public' AND bot.hidden_at IS NULL
          AND o.is_active AND o.disabled_at IS NULL
          AND o.deletion_requested_at IS NULL AND o.erased_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM blocks b
              WHERE (b.blocker_id = :viewer AND b.blocked_id = bot.owner_id)
                 OR (b.blocker_id = bot.owner_id AND b.blocked_id = :viewer))
    ), recorded AS (
        SELECT r.* FROM followees fe CROSS JOIN LATERAL (
            -- Per followed user through ix_activities_actor_id_id, newest first; the
            -- visibility checks sit inside so that the limit counts only shown items.
            SELECT a.id * :slots AS key, a.verb AS kind, fe.username AS actor,
                   a.created_at, sb.id AS bot_id, fork.id AS fork_id,
                   c.id AS comment_id, left(c.body, :excerpt) AS excerpt,
                   NULL::int AS rank, NULL::text AS period, NULL::text AS metric,
                   NULL::int AS boards
            FROM activities a
            LEFT JOIN comments c
              ON a.verb = 'comment.created'
             AND c.id = CASE WHEN a.object_id ~ :uuid_re THEN a.object_id::uuid END
            JOIN shown_bots sb ON sb.id = CASE
                WHEN a.verb = 'comment.created' THEN c.bot_id
                WHEN a.verb = 'bot.forked' AND a.data->>'source_bot_id' ~ :uuid_re
                    THEN (a.data->>'source_bot_id')::uuid
                WHEN a.verb = 'bot.published' AND a.object_id ~ :uuid_re
                    THEN a.object_id::uuid
              END
            LEFT JOIN shown_bots fork
              ON a.verb = 'bot.forked'
             AND fork.id = CASE WHEN a.object_id ~ :uuid_re THEN a.object_id::uuid END
             AND fork.owner_id = fe.id
            WHERE a.actor_id = fe.id
              AND a.verb IN ('bot.published', 'bot.forked', 'comment.created')
              AND a.id <= (:cursor - 1) / :slots
              AND (a.verb <> 'comment.created'
                   OR (c.hidden_at IS NULL AND c.deleted_at IS NULL AND c.author_id = fe.id))
              AND (a.verb <> 'bot.published' OR sb.owner_id = fe.id)
            ORDER BY a.id DESC
            LIMIT :n
        ) r
    ), generation AS (
        SELECT id, activated_at FROM leaderboard_generations
        WHERE status = 'active' AND :top_n > 0
        ORDER BY id DESC LIMIT 1
    ), watermark AS (
        -- The last activity recorded before the generation went live: the scan walks
        -- back from the newest row only as far as the activation, and only when there
        -- is an active generation (the lateral runs once per generation row).
        SELECT coalesce((
            SELECT last.id FROM generation g CROSS JOIN LATERAL (
                SELECT a.id FROM activities a
                WHERE a.created_at <= g.activated_at
                ORDER BY a.id DESC LIMIT 1) last), 0) AS id
    ), boards AS (
        SELECT * FROM unnest(CAST(:periods AS text[]), CAST(:metrics AS text[]))
            WITH ORDINALITY AS b(p, m, ord)
    ), placings AS (
        -- Board by board through the primary key (generation, period, metric, rank).
        SELECT DISTINCT ON (e.bot_id)
               e.bot_id, e.rank, e.period, e.metric,
               count(*) OVER (PARTITION BY e.bot_id) AS boards, fe.username AS actor
        FROM generation g CROSS JOIN boards
        JOIN leaderboard_entries e
          ON e.generation_id = g.id AND e.period = boards.p AND e.metric = boards.m
         AND e.rank <= :top_n
        JOIN followees fe ON fe.id = e.owner_id
        JOIN shown_bots sb ON sb.id = e.bot_id AND sb.owner_id = e.owner_id
        WHERE e.previous_rank IS NULL OR e.previous_rank > :top_n
        ORDER BY e.bot_id, e.rank, boards.ord
    ), placed AS (
        SELECT w.id * :slots + :slots - row_number() OVER (ORDER BY p.rank, p.bot_id) AS key,
               'leaderboard.placed' AS kind, p.actor, g.activated_at AS created_at,
               p.bot_id, NULL::uuid AS fork_id, NULL::uuid AS comment_id,
               NULL::text AS excerpt, p.rank, p.period::text, p.metric::text,
               p.boards::int
        FROM placings p CROSS JOIN generation g CROSS JOIN watermark w
    )
    SELECT * FROM recorded
    UNION ALL
    SELECT * FROM placed WHERE key < :cursor AND key > (SELECT id FROM watermark) * :slots
    ORDER BY key DESC
    LIMIT :n
    """
).bindparams(
    bindparam("periods", type_=ARRAY(String)),
    bindparam("metrics", type_=ARRAY(String)),
    bindparam("cursor", type_=BigInteger),
)


@dataclass(frozen=True)
class FeedRow:
    """One feed item as read: the ids of what it shows, not yet their summaries."""

    key: int
    kind: str
    actor: str
    created_at: datetime
    bot_id: uuid.UUID
    fork_id: uuid.UUID | None
    comment_id: uuid.UUID | None
    excerpt: str | None
    rank: int | None
    period: str | None
    metric: str | None
    boards: int | None


def feed_page(viewer_id: uuid.UUID, cursor: int | None, limit: int, top_n: int) -> list[FeedRow]:
    """The reader's feed below ``cursor`` (a key; None: the newest), at most ``limit`` rows.

    ``top_n``: a placing counts from this rank up (the leaderboard notice's setting);
    0 leaves placings out.
    """
    boards = [(period, metric) for period in PERIODS for metric in BOARD_METRICS]
    params: dict[str, Any] = {
        "viewer": viewer_id,
        "default_visibility": default_settings()["profile_visibility"],
        "slots": SLOTS,
        "excerpt": EXCERPT,
        "uuid_re": _UUID_RE,
        "cursor": FIRST_PAGE if cursor is None else cursor,
        "n": min(limit, MAX_PAGE + 1),
        "top_n": top_n,
        "periods": [period for period, _ in boards],
        "metrics": [metric for _, metric in boards],
    }
    return [FeedRow(**row._asdict()) for row in db.execute(_FEED, params)]


@dataclass(frozen=True)
class BotSummary:
    """What a feed item shows of a bot."""

    id: uuid.UUID
    name: str
    symbol: str


def bot_summaries(bot_ids: set[uuid.UUID]) -> dict[uuid.UUID, BotSummary]:
    """Id, name and symbol of each bot, in one query (the feed checked who may see them)."""
    if not bot_ids:
        return {}
    rows = db.execute(
        select(Bot.id, Bot.name, Instrument.symbol)
        .join(Instrument, Instrument.id == Bot.instrument_id)
        .where(Bot.id.in_(list(bot_ids)))
    )
    return {row.id: BotSummary(row.id, row.name, row.symbol) for row in rows}
