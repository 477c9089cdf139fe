"""Share links: a token that shows one bot to whoever holds it (docs/community.md#share-links).

The token is 256 random bits, shown once; only its SHA-256 is stored, so a database
leak gives no working link. A link answers while it is not revoked, not expired, its bot
is not hidden by moderation and the bot's owner is active; it works for a private bot
too (sharing a private bot with a friend is the point). Everything else, an unknown
token included, is the same :class:`NotFound`, found by one indexed statement on the
token's hash whatever the reason.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from models.bots.bots import Bot, owner_is_active
from models.community.tables import ShareLink
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity.tables import User
from models.pagination import older_than

# secrets.token_urlsafe(32): 256 bits in 43 URL-safe characters.
TOKEN_BYTES = 32
MAX_EXPIRY = timedelta(days=365)
# Links of one bot that still work (neither revoked nor expired); revoke one to make room.
MAX_LIVE_LINKS = 50
MAX_LABEL = 80
# The one answer for every link that does not work, whatever the reason.
LINK_NOT_FOUND = "No shared bot at this link."


def token_digest(token: str) -> bytes:
    """The stored form of a token: its SHA-256 (32 bytes)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def link_status(link: ShareLink, now: datetime) -> str:
    """``revoked``, ``expired`` or ``active`` at ``now``."""
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at is not None and link.expires_at <= now:
        return "expired"
    return "active"


def _works(now: datetime) -> ColumnElement[bool]:
    """SQL: the link is neither revoked nor expired at ``now``."""
    return and_(
        ShareLink.revoked_at.is_(None),
        or_(ShareLink.expires_at.is_(None), ShareLink.expires_at > now),
    )


def _bot_shown() -> ColumnElement[bool]:
    """SQL: the link's bot is not hidden and its owner is active (any visibility)."""
    shown = (
        select(Bot.id)
        .join(User, User.id == Bot.owner_id)
        .where(Bot.id == ShareLink.bot_id, Bot.hidden_at.is_(None), owner_is_active())
    )
    return shown.exists()


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is None:
        return
    if expires_at <= now:
        message = "expires_at must be in the future."
    elif expires_at > now + MAX_EXPIRY:
        message = f"expires_at may be at most {MAX_EXPIRY.days} days from now."
    else:
        return
    raise Invalid(message, {"json": {"expires_at": [message]}})


def create_share_link(
    bot: Bot,
    creator_id: uuid.UUID,
    *,
    scope: str,
    expires_at: datetime | None,
    label: str | None,
    now: datetime,
) -> tuple[ShareLink, str]:
    """Add a link to ``bot`` (the caller checked it is theirs); returns it and its token.

    Raises :class:`Invalid` for an expiry not in ``(now, now + MAX_EXPIRY]`` and
    :class:`Conflict` when the bot already has ``MAX_LIVE_LINKS`` working links.
    """
    _check_expiry(expires_at, now)
    live = db.scalar(
        select(func.count()).select_from(ShareLink).where(ShareLink.bot_id == bot.id, _works(now))
    )
    if (live or 0) >= MAX_LIVE_LINKS:
        raise Conflict(
            f"This bot already has {MAX_LIVE_LINKS} working share links; revoke one first."
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = ShareLink(
        id=uuid.uuid4(),
        bot_id=bot.id,
        created_by=creator_id,
        token_hash=token_digest(token),
        scope=scope,
        label=label,
        expires_at=expires_at,
        views=0,
        created_at=now,
    )
    db.add(link)
    db.flush()
    return link, token


def list_share_links(
    bot_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ShareLink]:
    """Up to ``limit`` of the bot's links, newest first, older than the ``before`` cursor."""
    stmt = (
        select(ShareLink)
        .where(ShareLink.bot_id == bot_id)
        .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(older_than(ShareLink.created_at, ShareLink.id, before))
    return list(db.scalars(stmt))


def revoke_share_link(bot_id: uuid.UUID, link_id: uuid.UUID, now: datetime) -> None:
    """Revoke the bot's link at once; revoking again keeps the first time (idempotent).

    Raises :class:`NotFound` when the bot has no such link.
    """
    revoked = db.scalar(
        update(ShareLink)
        .where(ShareLink.id == link_id, ShareLink.bot_id == bot_id)
        .values(revoked_at=func.coalesce(ShareLink.revoked_at, now))
        .returning(ShareLink.id)
    )
    if revoked is None:
        raise NotFound("No share link with that id.")


def _open(token: str, now: datetime, *, count: bool) -> tuple[dict[str, Any], Bot]:
    digest = token_digest(token)
    where = (ShareLink.token_hash == digest, _works(now), _bot_shown())
    columns = (ShareLink.id, ShareLink.bot_id, ShareLink.scope, ShareLink.expires_at)
    if count:
        # One statement finds and counts, so concurrent views never lose an increment.
        stmt: Any = (
            update(ShareLink)
            .where(*where)
            .values(
                views=ShareLink.views + 1,
                last_viewed_at=func.greatest(func.coalesce(ShareLink.last_viewed_at, now), now),
            )
            .returning(*columns)
        )
    else:
        stmt = select(*columns).where(*where)
    row = db.execute(stmt).one_or_none()
    bot = db.get(Bot, row.bot_id) if row is not None else None
    if row is None or bot is None:
        raise NotFound(LINK_NOT_FOUND)
    return {"id": row.id, "scope": row.scope, "expires_at": row.expires_at}, bot


def view_shared_bot(token: str, now: datetime) -> tuple[dict[str, Any], Bot]:
    """The working link behind ``token`` (id, scope, expiry) and its bot; counts one view.

    Raises :class:`NotFound` (:data:`LINK_NOT_FOUND`) for any link that does not work.
    """
    return _open(token, now, count=True)


def shared_bot(token: str, now: datetime) -> tuple[dict[str, Any], Bot]:
    """Like :func:`view_shared_bot`, without counting a view (a fork reads the link)."""
    return _open(token, now, count=False)
