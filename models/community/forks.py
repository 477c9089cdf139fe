"""Forks: a draft copy of a bot's configuration, owned by whoever forked it.

A bot may be forked by id when it is the caller's own (not hidden by moderation) or a
public bot the caller may see whose owner did not block them; through a share link, when
the link's scope shows the configuration (docs/community.md#forks). A fork copies what
the bot trades and how (strategy, risk, symbol, timeframe, capital and costs) and its
description; never its runs, trades, equity, schedule, share links, stars or comments.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from models.bots.bots import Bot, community_bot, create_bot
from models.community.blocks import has_blocked, notify_unless_blocked
from models.db import session as db
from models.errors import Conflict, NotFound
from models.identity.tables import User
from models.people.preferences import bot_defaults

MAX_NAME = 80
# Fork names tried before giving up: "<name>", "<name> (fork)", "<name> (fork 2)", ...
MAX_NAME_TRIES = 1000
NOT_FORKABLE = "No bot with that id."


def forkable_bot(caller_id: uuid.UUID, bot_id: uuid.UUID) -> Bot:
    """The bot ``caller_id`` may fork by its id.

    Their own bot (:class:`Conflict` when moderation hid it), or someone else's public
    bot they may see and whose owner did not block them; every other bot, unlisted ones
    included, is :class:`NotFound` with the message of a missing one.
    """
    bot, mine = community_bot(caller_id, bot_id)  # someone else's: public, or a 404
    if mine:
        if bot.hidden_at is not None:
            raise Conflict("This bot was hidden by moderation; it cannot be forked.")
        return bot
    if has_blocked(bot.owner_id, caller_id):
        raise NotFound(NOT_FORKABLE)
    return bot


def _candidates(base: str) -> list[str]:
    names = [base[:MAX_NAME]]
    for n in range(1, MAX_NAME_TRIES):
        suffix = " (fork)" if n == 1 else f" (fork {n})"
        names.append(base[: MAX_NAME - len(suffix)] + suffix)
    return names


def free_fork_name(owner_id: uuid.UUID, base: str) -> str:
    """The first of ``base``, ``base (fork)``, ``base (fork 2)``, ... the owner does not use.

    Each is cut to fit the 80 characters of a name. :class:`Conflict` if all are taken.
    """
    candidates = _candidates(base)
    # Every candidate starts with this much of the base (the longest suffix is " (fork 999)").
    prefix = base[: MAX_NAME - len(f" (fork {MAX_NAME_TRIES - 1})")]
    taken = set(
        db.scalars(
            select(Bot.name).where(
                Bot.owner_id == owner_id, Bot.name.startswith(prefix, autoescape=True)
            )
        )
    )
    for name in candidates:
        if name not in taken:
            return name
    raise Conflict("Too many forks of this bot's name; give the fork a name.")


def _copy_fields(source: Bot, visibility: str) -> dict[str, Any]:
    return {
        "description": source.description,
        "symbol": source.instrument.symbol,
        "timeframe": source.timeframe,
        "strategy": copy.deepcopy(source.strategy),
        "risk": copy.deepcopy(source.risk),
        "initial_capital": source.initial_capital,
        "fee": source.fee,
        "slippage_bps": source.slippage_bps,
        "visibility": visibility,
    }


def _create(forker_id: uuid.UUID, fields: dict[str, Any], name: str | None) -> Bot:
    """create_bot under a fresh name; a name taken meanwhile (a double click) tries the next."""
    for _ in range(3):
        chosen = name or free_fork_name(forker_id, fields["name"])
        try:
            with db.begin_nested():
                return create_bot(forker_id, {**fields, "name": chosen})
        except (IntegrityError, Conflict):
            if name is not None:
                raise Conflict(f"You already have a bot named {name!r}.") from None
    raise Conflict("Could not find a free name for the fork; give it a name.")


def fork_bot(forker: User, source: Bot, name: str | None = None) -> Bot:
    """A ``draft`` copy of ``source`` owned by ``forker``, its lineage set; notifies the owner.

    The copy gets the forker's default bot visibility and is validated like any new bot.
    ``name`` left out: the source's name, or the first free ``(fork)`` variant of it.
    The owner is told (``bot.forked``) unless it is their own bot or either blocked the other.
    """
    visibility = str(bot_defaults(forker.id)["visibility"])
    fields = {**_copy_fields(source, visibility), "name": source.name}
    bot = _create(forker.id, fields, name)
    bot.forked_from_id = source.id
    db.flush()
    if not has_blocked(forker.id, source.owner_id):
        notify_unless_blocked(
            forker.id,
            source.owner_id,
            "bot.forked",
            {
                "bot_id": str(source.id),
                "bot_name": source.name,
                "fork_id": str(bot.id),
                "by": forker.username,
            },
        )
    return bot
