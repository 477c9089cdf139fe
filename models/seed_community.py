"""The demo community made by ``flask seed``: follows, stars, comments and forks (issue 15).

Among the demo accounts of models/seed.py and the public bots of models/seed_tracks.py, so
that a fresh machine's profiles, cards and feeds show a community: alice and bob follow the
demo traders, the traders follow each other, bots carry stars and a short thread of
comments, and alice has forked one of carol's bots. Each relation is made through the same
model functions as the API (notifications included) and recorded as the activity the feed
reads (``bot.published``, ``bot.forked``, ``comment.created``). Idempotent: whatever exists
is left alone, so a second run changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from models.bots.bots import Bot
from models.community.comments import create_comment
from models.community.follows import follow
from models.community.forks import fork_bot
from models.community.stars import star
from models.community.tables import BotStar, Comment
from models.db import session as db
from models.identity.tables import User
from models.identity.users import find_by_login
from models.people.activities import record
from models.people.tables import Activity

FOLLOWS = (
    ("alice", "carol"),
    ("alice", "dave"),
    ("alice", "heidi"),
    ("bob", "carol"),
    ("bob", "frank"),
    ("carol", "dave"),
    ("dave", "carol"),
    ("erin", "grace"),
    ("grace", "heidi"),
    ("heidi", "carol"),
)
# (who stars, owner, bot name)
STARS = (
    ("alice", "carol", "BTC trend rider (SMA 10/30)"),
    ("bob", "carol", "BTC trend rider (SMA 10/30)"),
    ("dave", "carol", "BTC trend rider (SMA 10/30)"),
    ("alice", "heidi", "BTC Donchian breakout"),
    ("carol", "dave", "BTC RSI dips"),
    ("erin", "grace", "BTC MACD swing (4h)"),
    ("bob", "frank", "BTC momentum rules"),
)


@dataclass(frozen=True)
class DemoComment:
    """A comment on ``owner``'s bot ``bot``; ``reply_to`` is the body of the one it answers."""

    author: str
    owner: str
    bot: str
    body: str
    reply_to: str | None = None


COMMENTS = (
    DemoComment(
        "alice",
        "carol",
        "BTC trend rider (SMA 10/30)",
        "How does this hold up in a sideways month? The drawdown looks small for a crossover.",
    ),
    DemoComment(
        "carol",
        "carol",
        "BTC trend rider (SMA 10/30)",
        "It gives some back in chop, but the 30-period filter keeps it out of most whipsaws.",
        reply_to="How does this hold up in a sideways month? The drawdown looks small for a "
        "crossover.",
    ),
    DemoComment(
        "dave",
        "heidi",
        "BTC Donchian breakout",
        "Nice breakout system. Have you tried a longer channel on the 4h?",
    ),
)
# (who forks, owner, bot name, the fork's name)
FORKS = (("alice", "carol", "BTC trend rider (SMA 10/30)", "Trend rider, my tweaks"),)


@dataclass
class SeededCommunity:
    """What one run added (0 everywhere on a second run)."""

    follows: int = 0
    stars: int = 0
    comments: int = 0
    forks: int = 0
    published: int = 0


def _user(name: str) -> User | None:
    return find_by_login(name)


def _bot(owner: User, name: str) -> Bot | None:
    return db.scalar(select(Bot).where(Bot.owner_id == owner.id, Bot.name == name))


def _recorded(verb: str, object_id: uuid.UUID) -> bool:
    found = db.scalar(
        select(Activity.id).where(Activity.verb == verb, Activity.object_id == str(object_id))
    )
    return found is not None


def _publish_demo_bots(done: SeededCommunity) -> None:
    """A ``bot.published`` activity for each public demo bot (the feed's "new public bot")."""
    traders = (_user(name) for name in ("carol", "dave", "erin", "frank", "grace", "heidi"))
    owners = [user.id for user in traders if user is not None]
    bots = db.scalars(
        select(Bot)
        .where(Bot.owner_id.in_(owners), Bot.visibility == "public")
        .order_by(Bot.created_at, Bot.id)
    )
    for bot in bots:
        if not _recorded("bot.published", bot.id):
            record("bot.published", bot.owner_id, object_type="bot", object_id=bot.id)
            done.published += 1


def seed_community() -> SeededCommunity:
    """Follows, stars, comments and forks among the demo users; the caller commits."""
    done = SeededCommunity()
    _publish_demo_bots(done)
    for follower, followee in FOLLOWS:
        a, b = _user(follower), _user(followee)
        if a is not None and b is not None and follow(a.id, b.id):
            record("user.followed", a.id, object_type="user", object_id=b.id)
            done.follows += 1
    for who, owner_name, name in STARS:
        user, owner = _user(who), _user(owner_name)
        bot = _bot(owner, name) if owner is not None else None
        if user is not None and bot is not None and db.get(BotStar, (bot.id, user.id)) is None:
            star(bot.id, user.id)
            done.stars += 1
    for demo in COMMENTS:
        _comment(demo, done)
    for who, owner_name, name, fork_name in FORKS:
        user, owner = _user(who), _user(owner_name)
        source = _bot(owner, name) if owner is not None else None
        if user is None or source is None or _bot(user, fork_name) is not None:
            continue
        fork = fork_bot(user, source, fork_name)
        data = {"source_bot_id": str(source.id), "source_name": source.name, "via": "public"}
        record("bot.forked", user.id, object_type="bot", object_id=fork.id, data=data)
        done.forks += 1
    db.flush()
    return done


def _comment(demo: DemoComment, done: SeededCommunity) -> None:
    author, owner = _user(demo.author), _user(demo.owner)
    bot = _bot(owner, demo.bot) if owner is not None else None
    if author is None or bot is None:
        return
    exists = db.scalar(
        select(Comment.id).where(
            Comment.bot_id == bot.id, Comment.author_id == author.id, Comment.body == demo.body
        )
    )
    if exists is not None:
        return
    parent = None
    if demo.reply_to is not None:
        parent = db.scalar(
            select(Comment).where(
                Comment.bot_id == bot.id, Comment.body == demo.reply_to, Comment.parent_id.is_(None)
            )
        )
        if parent is None:
            return
    comment = create_comment(bot.id, author.id, demo.body, parent)
    record(
        "comment.created",
        author.id,
        object_type="comment",
        object_id=comment.id,
        data={"bot_id": str(bot.id)},
    )
    done.comments += 1
