"""Request and response bodies of the feed (``GET /api/v1/feed``)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from api.schemas import OutSchema, StrictSchema, one_of
from models.community.feed import FEED_VERBS, FIRST_PAGE, MAX_PAGE, PLACED, BotSummary, FeedRow

KINDS = (*FEED_VERBS, PLACED)


class FeedQuery(StrictSchema):
    """Page my feed, newest first."""

    cursor = ma.fields.Integer(
        # Keys are bigints: a larger cursor would overflow in Postgres.
        validate=ma.validate.Range(min=1, max=FIRST_PAGE),
        metadata={"description": "next_cursor of the previous page"},
    )
    limit = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=MAX_PAGE))


class FeedActorOut(OutSchema):
    """Who did it: a user I follow."""

    username = ma.fields.String()
    profile_url = ma.fields.String()


class FeedBotOut(OutSchema):
    """The bot an item is about (a public bot anyone may open)."""

    id = ma.fields.UUID()
    name = ma.fields.String()
    symbol = ma.fields.String()


class FeedCommentOut(OutSchema):
    """A comment's start: plain text, to be shown as text."""

    id = ma.fields.UUID()
    excerpt = ma.fields.String(metadata={"description": "the first 200 characters"})


class FeedPlacingOut(OutSchema):
    """The bot's best new place on the default boards."""

    rank = ma.fields.Integer()
    period = ma.fields.String()
    metric = ma.fields.String()
    boards = ma.fields.Integer(metadata={"description": "boards it newly entered the top of"})


class FeedItemOut(OutSchema):
    """One thing a followed user did; the objects a kind does not have are null."""

    kind = ma.fields.String(
        **one_of(
            KINDS,
            {kind: kind.replace(".", "_") for kind in KINDS},
            description="what happened (docs/community.md)",
        )
    )
    actor = ma.fields.Nested(FeedActorOut)
    created_at = ma.fields.DateTime()
    bot = ma.fields.Nested(
        FeedBotOut, metadata={"description": "published, forked, commented on or placed"}
    )
    fork = ma.fields.Nested(
        FeedBotOut, allow_none=True, metadata={"description": "bot.forked: the copy, if public"}
    )
    comment = ma.fields.Nested(FeedCommentOut, allow_none=True)
    placing = ma.fields.Nested(FeedPlacingOut, allow_none=True)


class FeedListOut(OutSchema):
    """A page of the feed, newest first; ``next_cursor`` is null on the last page."""

    items = ma.fields.List(ma.fields.Nested(FeedItemOut))
    next_cursor = ma.fields.Integer(allow_none=True)


def _bot(summary: BotSummary) -> dict[str, Any]:
    return {"id": summary.id, "name": summary.name, "symbol": summary.symbol}


def feed_item(row: FeedRow, bots: dict[Any, BotSummary]) -> dict[str, Any] | None:
    """The response body of one row, or None if its bot vanished since the page was read."""
    bot = bots.get(row.bot_id)
    if bot is None:
        return None
    fork = bots.get(row.fork_id) if row.fork_id is not None else None
    placing = None
    if row.kind == PLACED:
        placing = {
            "rank": row.rank,
            "period": row.period,
            "metric": row.metric,
            "boards": row.boards,
        }
    return {
        "kind": row.kind,
        "actor": {"username": row.actor, "profile_url": f"/api/v1/users/{row.actor}"},
        "created_at": row.created_at,
        "bot": _bot(bot),
        "fork": _bot(fork) if fork is not None else None,
        "comment": (
            {"id": row.comment_id, "excerpt": row.excerpt or ""}
            if row.comment_id is not None
            else None
        ),
        "placing": placing,
    }
