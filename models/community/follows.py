"""Follows: one user follows another, and the lists and counts that come of it.

Following is idempotent (a second follow is the first one) and refused between two users
when either blocked the other. Who may be followed at all (a visible profile) is the
caller's to check (models.people.profiles.visible_profile). Counts are counted from the
rows when read, never stored (docs/community.md).
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from models.community.blocks import has_blocked
from models.community.people import (
    MAX_PAGE,
    Keyset,
    PersonEntry,
    account_is_active,
    profile_visibility,
)
from models.community.tables import Follow
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity.tables import User
from models.pagination import older_than
from models.people.profiles import NOT_FOUND
from models.people.tables import AccountSettings


def follow(follower_id: uuid.UUID, followee_id: uuid.UUID) -> bool:
    """Make ``follower_id`` follow ``followee_id``; True when the follow is new.

    :class:`Invalid` for oneself; :class:`Conflict` when the follower blocked the
    followee (they know that already); :class:`NotFound`, the unknown user's answer,
    when the followee blocked the follower, so a block is not announced.
    """
    if follower_id == followee_id:
        raise Invalid("You cannot follow yourself.", {"username": ["You cannot follow yourself."]})
    if has_blocked(follower_id, followee_id):
        raise Conflict("You blocked this user: unblock them to follow them.")
    if has_blocked(followee_id, follower_id):
        raise NotFound(NOT_FOUND)
    inserted = db.execute(
        insert(Follow)
        .values(
            follower_id=follower_id,
            followee_id=followee_id,
            # The clock, not the transaction's start: lists order by it.
            created_at=func.clock_timestamp(),
        )
        .on_conflict_do_nothing(index_elements=["follower_id", "followee_id"])
        .returning(Follow.follower_id)
    ).first()
    return inserted is not None


def unfollow(follower_id: uuid.UUID, followee_id: uuid.UUID) -> bool:
    """Stop ``follower_id`` following ``followee_id``; True when there was a follow."""
    gone = db.execute(
        delete(Follow)
        .where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
        .returning(Follow.follower_id)
    ).first()
    return gone is not None


def follow_counts(user_id: uuid.UUID) -> tuple[int, int]:
    """(followers, following) of ``user_id``, counting only accounts that are listed."""
    followers = db.scalar(
        select(func.count())
        .select_from(Follow)
        .join(User, User.id == Follow.follower_id)
        .where(Follow.followee_id == user_id, account_is_active())
    )
    following = db.scalar(
        select(func.count())
        .select_from(Follow)
        .join(User, User.id == Follow.followee_id)
        .where(Follow.follower_id == user_id, account_is_active())
    )
    return int(followers or 0), int(following or 0)


def _people_page(
    fixed: uuid.UUID, fixed_is_followee: bool, after: Keyset | None, limit: int
) -> list[PersonEntry]:
    """The other side of ``fixed``'s follows, newest follow first (keyset on time, id)."""
    mine = Follow.followee_id if fixed_is_followee else Follow.follower_id
    other = Follow.follower_id if fixed_is_followee else Follow.followee_id
    stmt = (
        select(User.id, User.username, User.display_name, profile_visibility(), Follow.created_at)
        .select_from(Follow)
        .join(User, User.id == other)
        .outerjoin(AccountSettings, AccountSettings.user_id == User.id)
        .where(mine == fixed, account_is_active())
        .order_by(Follow.created_at.desc(), other.desc())
        .limit(min(limit, MAX_PAGE + 1))
    )
    if after is not None:
        stmt = stmt.where(older_than(Follow.created_at, other, after))
    return [
        PersonEntry(
            username=username,
            display_name=display_name if visibility == "public" else None,
            profile_public=visibility == "public",
            since=created_at,
            user_id=user_id,
        )
        for user_id, username, display_name, visibility, created_at in db.execute(stmt)
    ]


def followers_page(user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[PersonEntry]:
    """Who follows ``user_id``, newest first, at most ``limit``."""
    return _people_page(user_id, True, after, limit)


def following_page(user_id: uuid.UUID, after: Keyset | None, limit: int) -> list[PersonEntry]:
    """Whom ``user_id`` follows, newest first, at most ``limit``."""
    return _people_page(user_id, False, after, limit)
