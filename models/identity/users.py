"""Account helpers: create, authenticate, search, roles, disable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity import names as naming
from models.identity.passwords import hash_password, needs_rehash, verify_password
from models.identity.tables import Role, User


def get_user(user_id: uuid.UUID | str) -> User:
    """The user with that id, or :class:`NotFound`."""
    try:
        key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    except ValueError as exc:
        raise NotFound("No user with that id.") from exc
    user = db.get(User, key)
    if user is None:
        raise NotFound("No user with that id.")
    return user


def find_by_login(login: str) -> User | None:
    """The user whose email or username is ``login``, compared by canonical key.

    ``ALICE``, its full-width form and ``Alice@EXAMPLE.com`` all find the same account.
    """
    if "\x00" in login:  # Postgres text cannot hold NUL: no stored name has one
        return None
    if "@" in naming.nfkc(login):  # a full-width at sign (U+FF20) is "@" after NFKC
        stmt = select(User).where(User.email_key == naming.email_key(login))
    else:
        stmt = select(User).where(User.username_key == naming.username_key(login))
    return db.scalars(stmt).one_or_none()


def roles_by_name(names: Sequence[str]) -> list[Role]:
    """Roles for ``names``; :class:`NotFound` names the first unknown one."""
    wanted = sorted(set(names))
    found = {r.name: r for r in db.scalars(select(Role).where(Role.name.in_(wanted)))}
    for name in wanted:
        if name not in found:
            raise NotFound(f"No role named {name!r}.")
    return [found[n] for n in wanted]


def create_user(email: str, username: str, password: str, roles: Sequence[str] = ("user",)) -> User:
    """Create and flush an account; :class:`Conflict` when email or username is taken.

    Both are stored NFKC-normalised as typed, and unique by their keys (see
    models/identity/names.py); :class:`Invalid` when either cannot be stored. Whether an
    email's domain is public is the API's rule, not this one (the seed uses ``.local``).
    """
    username = naming.nfkc(username)
    problems = {
        field: [problem]
        for field, problem in (
            ("email", naming.email_problem(email)),
            ("username", naming.username_problem(username)),
        )
        if problem is not None
    }
    if problems:
        raise Invalid(next(iter(problems.values()))[0], errors={"json": problems})
    email_key, username_key = naming.email_key(email), naming.username_key(username)
    taken = db.scalars(
        select(User).where(or_(User.email_key == email_key, User.username_key == username_key))
    ).first()
    if taken is not None:
        field = "email" if taken.email_key == email_key else "username"
        raise Conflict(f"That {field} is already registered.")
    user = User(
        email=naming.display_email(email),
        email_key=email_key,
        username=username,
        username_key=username_key,
        password_hash=hash_password(password),
        roles=roles_by_name(roles),
    )
    db.add(user)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("That email or username is already registered.") from exc
    return user


def awaiting_deletion(user: User, now: datetime) -> bool:
    """Deactivated by its owner's deletion request and still inside the grace period.

    Such an account may log in: that cancels the deletion (models/people/lifecycle.py).
    An account an admin disabled meanwhile may not.
    """
    return (
        user.deletion_due_at is not None
        and user.deletion_due_at > now
        and user.erased_at is None
        and user.disabled_at is None
    )


def authenticate(login: str, password: str, now: datetime) -> User | None:
    """The active user with these credentials, or None; the cost is the same either way.

    An account awaiting deletion is returned too: its login cancels the deletion.
    """
    user = find_by_login(login)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not (user.is_active or awaiting_deletion(user, now)):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return user


def search_users(query: str | None) -> Select[User]:
    """Users matching ``query`` in email, username or display name; newest first."""
    stmt = select(User).order_by(User.created_at.desc(), User.username)
    if query:
        key = _like_pattern(naming.fold(query))
        stmt = stmt.where(
            or_(
                User.email_key.like(key),
                User.username_key.like(key),
                func.lower(User.display_name).like(_like_pattern(query.lower())),
            )
        )
    return stmt


def _like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards in ``text`` escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return f"%{escaped}%"


def count_admins() -> int:
    """How many active users hold the admin role."""
    stmt = (
        select(func.count(User.id))
        .where(User.is_active.is_(True))
        .where(User.roles.any(Role.name == "admin"))
    )
    return int(db.scalar(stmt) or 0)


def set_roles(user: User, names: Sequence[str]) -> User:
    """Replace the user's roles; refuse to remove the last active admin."""
    roles = roles_by_name(names)
    losing_admin = "admin" in user.role_names and "admin" not in {r.name for r in roles}
    if losing_admin and user.is_active and count_admins() <= 1:
        raise Conflict("That would leave no active admin.")
    user.roles = roles
    return user


def disable_user(user: User, now: datetime) -> User:
    """Mark the account inactive; callers also revoke its sessions."""
    if "admin" in user.role_names and user.is_active and count_admins() <= 1:
        raise Conflict("That would leave no active admin.")
    user.is_active = False
    user.disabled_at = now
    return user


def enable_user(user: User) -> User:
    """Let a disabled account log in again."""
    user.is_active = True
    user.disabled_at = None
    return user


def set_password(user: User, password: str) -> User:
    """Store a new argon2id hash for ``password``; callers revoke sessions as they need."""
    user.password_hash = hash_password(password)
    return user
