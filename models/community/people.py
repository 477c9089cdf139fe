"""Shared rules for lists of people (followers, following, blocks): who is shown, and how.

An account that is disabled, leaving or erased is left out of every list. A user whose
profile is private is listed by username only, the way a bot card shows its owner
(api/bots/cards.py): no display name and no profile link, since that link would 404.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.sql.elements import KeyedColumnElement

from models.db import session as db
from models.errors import NotFound
from models.identity import names as naming
from models.identity.tables import User
from models.people.preferences import default_settings
from models.people.profiles import NOT_FOUND
from models.people.tables import AccountSettings

MAX_PAGE = 100
# A list's keyset: when the relation began, and the listed user's id.
Keyset = tuple[datetime, uuid.UUID]


@dataclass(frozen=True)
class PersonEntry:
    """One listed person and when the listed relation began (the list's order)."""

    username: str
    display_name: str | None
    profile_public: bool
    since: datetime
    user_id: uuid.UUID


def account_is_active() -> ColumnElement[bool]:
    """SQL: the joined ``User`` may be shown to others (active, not leaving, not erased)."""
    return and_(
        User.is_active.is_(True),
        User.disabled_at.is_(None),
        User.deletion_requested_at.is_(None),
        User.erased_at.is_(None),
    )


def profile_visibility() -> KeyedColumnElement[str]:
    """SQL: the joined user's profile visibility (outer-join ``AccountSettings`` for it)."""
    return func.coalesce(
        AccountSettings.document["profile_visibility"].astext,
        default_settings()["profile_visibility"],
    ).label("profile_visibility")


def existing_account(username: str) -> User:
    """The account named ``username`` whatever its profile setting; :class:`NotFound` if erased.

    Blocking reaches private profiles too (protection must not depend on the other's
    setting); a name that was never taken, or was erased, is the profiles' 404.
    """
    if "\x00" in username or len(username) > 4 * naming.USERNAME_MAX:
        raise NotFound(NOT_FOUND)
    user = db.scalars(
        select(User).where(User.username_key == naming.username_key(username))
    ).one_or_none()
    if user is None or user.erased_at is not None:
        raise NotFound(NOT_FOUND)
    return user
