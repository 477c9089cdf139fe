"""Mirrors: a bot that follows another user's public live bot in its owner's paper account.

A mirror is an ordinary bot of its owner (its runs, trades, equity, logs and performance
are tracked like any run) plus a ``bot_mirrors`` row naming its source. Its ``strategy``
and ``risk`` are a copy of the source's, so every reader of ``bots.strategy`` works
unchanged; the tick routes on the ``bot_mirrors`` row instead and copies the source's
fills (``engine.mirror``). See docs/community.md, "Mirrors", and docs/execution.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import aliased

from models.bots.bots import Bot, community_bot, create_bot, owner_is_active
from models.bots.mirrors import BotMirror
from models.bots.runs import BotRun, start_bot
from models.db import session as db
from models.errors import Conflict
from models.identity.tables import User
from models.people.preferences import trading_defaults

NAME_CHARS = 80
SUFFIX = " (mirror)"


def followable(source: type[Bot] | Any, owner: type[User] | Any) -> Any:
    """SQL: a source a mirror may follow: public, not hidden, of an active owner."""
    return (source.visibility == "public") & source.hidden_at.is_(None) & owner_is_active(owner)


def mirror_name(source_name: str) -> str:
    """The default name of a mirror: the source's, marked, within the name's length."""
    return source_name[: NAME_CHARS - len(SUFFIX)] + SUFFIX


def create_mirror(
    owner_id: uuid.UUID,
    source_id: uuid.UUID,
    fields: dict[str, Any],
    limit: int,
    now: datetime,
) -> tuple[Bot, Bot]:
    """Create and start the caller's mirror of a public live bot; returns (mirror, source).

    :class:`NotFound` for a bot the caller may not see or that is not public;
    :class:`Conflict` for the caller's own bot or one that is not running; :class:`QuotaExceeded`
    when the caller's live bots are at their limit. The source's row is share-locked, so a
    concurrent stop waits for the mirror and then pauses it.
    """
    source, mine = community_bot(owner_id, source_id)  # someone else's: public, or a 404
    if mine:
        raise Conflict("That is your own bot; fork it to run a copy of it.")
    status = db.scalar(
        select(Bot.status)
        .where(Bot.id == source.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    if status != "running":
        raise Conflict("Only a running bot can be mirrored; this one is not trading now.")
    costs = trading_defaults(owner_id)
    bot = create_bot(
        owner_id,
        {
            "name": fields.get("name") or mirror_name(source.name),
            "symbol": source.symbol,
            "timeframe": source.timeframe,
            "strategy": source.strategy,
            "risk": source.risk,
            "initial_capital": fields.get("initial_capital", costs["initial_capital"]),
            "fee": fields.get("fee", costs["fee"]),
            "slippage_bps": fields.get("slippage_bps", costs["slippage_bps"]),
            # A mirror repeats another user's trades: it stays off profiles and boards.
            "visibility": "private",
        },
    )
    db.add(BotMirror(bot_id=bot.id, source_bot_id=source.id))
    db.flush()
    start_bot(owner_id, bot.id, limit, now)
    return bot, source


def mirror_of(bot_id: uuid.UUID) -> BotMirror | None:
    """The bot's ``bot_mirrors`` row, or None when it is not a mirror."""
    return db.get(BotMirror, bot_id)


def refuse_shared_mirror(bot_id: uuid.UUID, visibility: str | None) -> None:
    """:class:`Conflict` when a mirror would become unlisted or public.

    A mirror's record is another user's trades; on a board or a profile it would be a
    duplicate of its source.
    """
    if visibility not in (None, "private") and mirror_of(bot_id) is not None:
        raise Conflict("A mirror stays private: it repeats another user's trades.")


@dataclass(frozen=True)
class MirrorRoutes:
    """Which mirror runs a tick batch advances, and after which source run."""

    followers: dict[uuid.UUID, uuid.UUID]  # mirror run -> its source's run, both running
    mirrors: set[uuid.UUID]  # the batch's own run ids that are mirrors


def mirror_routes(run_ids: list[uuid.UUID]) -> MirrorRoutes:
    """Route a tick batch: mirrors tick only right after their source, in the same job.

    ``followers`` are the running mirror runs of the batch's running sources that may be
    followed (public, not hidden, active owner); ``mirrors`` the batch's runs that are
    mirrors themselves, which are never ticked on their own. Two queries, no locks.
    """
    source_run, mirror_run = aliased(BotRun), aliased(BotRun)
    source, owner = aliased(Bot), aliased(User)
    rows = db.execute(
        select(mirror_run.id, source_run.id)
        .select_from(source_run)
        .join(BotMirror, BotMirror.source_bot_id == source_run.bot_id)
        .join(mirror_run, mirror_run.bot_id == BotMirror.bot_id)
        .join(source, source.id == source_run.bot_id)
        .join(owner, owner.id == source.owner_id)
        .where(
            source_run.id.in_(run_ids),
            source_run.status == "running",
            mirror_run.status == "running",
            followable(source, owner),
        )
    )
    followers = {mirror: source_id for mirror, source_id in rows}
    mirrors = set(
        db.scalars(
            select(BotRun.id)
            .join(BotMirror, BotMirror.bot_id == BotRun.bot_id)
            .where(BotRun.id.in_(run_ids))
        )
    )
    return MirrorRoutes(followers, mirrors)


def mark_following(bot_ids: list[uuid.UUID]) -> None:
    """Clear the pause reason of mirrors that follow again (after their owner resumed them)."""
    if bot_ids:
        db.execute(
            update(BotMirror)
            .where(BotMirror.bot_id.in_(bot_ids), BotMirror.paused_reason.is_not(None))
            .values(paused_reason=None)
        )
