"""The catalogue of roles and permissions, and its idempotent sync into the database."""

from __future__ import annotations

from sqlalchemy import select

from models.db import session as db
from models.identity.tables import Permission, Role

PERMISSIONS: dict[str, str] = {
    "users:read": "List and look up accounts, including private fields.",
    "users:manage": "Assign roles, disable and enable accounts.",
    "content:moderate": "Hide comments and shared bots, act on reports.",
    "ops:read": "See operational dashboards, queues and metrics.",
    "leaderboards:manage": "Recompute the leaderboards on demand.",
}

ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "user": ("Builds, backtests, runs and shares bots.", ()),
    "moderator": ("Keeps the community clean.", ("users:read", "content:moderate")),
    "admin": ("Runs the platform.", tuple(PERMISSIONS)),
}

DEFAULT_ROLE = "user"


def sync_roles() -> int:
    """Make the roles and permissions tables match the catalogue; returns rows changed."""
    changed = 0
    perms = {p.name: p for p in db.scalars(select(Permission))}
    for name, description in PERMISSIONS.items():
        perm = perms.get(name)
        if perm is None:
            perm = perms[name] = Permission(name=name, description=description)
            db.add(perm)
            changed += 1
        elif perm.description != description:
            perm.description = description
            changed += 1
    roles = {r.name: r for r in db.scalars(select(Role))}
    for name, (description, granted) in ROLES.items():
        role = roles.get(name)
        if role is None:
            role = Role(name=name, description=description, permissions=[])
            db.add(role)
            changed += 1
        elif role.description != description:
            role.description = description
            changed += 1
        wanted = sorted(granted)
        if sorted(p.name for p in role.permissions) != wanted:
            role.permissions = [perms[p] for p in wanted]
            changed += 1
    db.flush()
    return changed
