"""Account helpers: create, authenticate, search, roles, disable."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError

from models.db import session as db
from models.errors import Conflict, NotFound
from models.identity.passwords import hash_password, needs_rehash, verify_password
from models.identity.tables import Role, User


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively; we store them lower-cased and stripped."""
    return email.strip().lower()


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
    """The user whose email or username is ``login`` (case-insensitive)."""
    key = login.strip().lower()
    column = User.email if "@" in key else User.username
    return db.scalars(select(User).where(column == key)).one_or_none()


def roles_by_name(names: Sequence[str]) -> list[Role]:
    """Roles for ``names``; :class:`NotFound` names the first unknown one."""
    wanted = sorted(set(names))
    found = {r.name: r for r in db.scalars(select(Role).where(Role.name.in_(wanted)))}
    for name in wanted:
        if name not in found:
            raise NotFound(f"No role named {name!r}.")
    return [found[n] for n in wanted]


def create_user(email: str, username: str, password: str, roles: Sequence[str] = ("user",)) -> User:
    """Create and flush an account; :class:`Conflict` when email or username is taken."""
    email = normalize_email(email)
    username = username.strip().lower()
    taken = db.scalars(
        select(User).where(or_(User.email == email, User.username == username))
    ).first()
    if taken is not None:
        field = "email" if taken.email == email else "username"
        raise Conflict(f"That {field} is already registered.")
    user = User(
        email=email,
        username=username,
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


def authenticate(login: str, password: str, now: datetime) -> User | None:
    """The active user with these credentials, or None; the cost is the same either way."""
    user = find_by_login(login)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    return user


def search_users(query: str | None) -> Select[User]:
    """Users matching ``query`` in email, username or display name; newest first."""
    stmt = select(User).order_by(User.created_at.desc(), User.username)
    if query:
        escaped = query.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        pattern = f"%{escaped}%"
        stmt = stmt.where(
            or_(
                User.email.like(pattern),
                User.username.like(pattern),
                func.lower(User.display_name).like(pattern),
            )
        )
    return stmt


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
