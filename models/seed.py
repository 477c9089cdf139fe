"""The development world built by ``flask seed``: idempotent, safe to re-run."""

from __future__ import annotations

from dataclasses import dataclass

from models.rbac import sync_roles
from models.users import create_user, find_by_login


@dataclass(frozen=True)
class SeedAccount:
    """An account the seed makes, with its development password."""

    email: str
    username: str
    password: str
    roles: tuple[str, ...]


# Development-only passwords, printed by `flask seed`; production seeds refuse to use them.
DEV_ACCOUNTS = (
    SeedAccount("admin@botyard.local", "admin", "admin-dev-password", ("admin", "user")),
    SeedAccount("mod@botyard.local", "moderator", "moderator-dev-password", ("moderator", "user")),
    SeedAccount("alice@botyard.local", "alice", "alice-dev-password", ("user",)),
    SeedAccount("bob@botyard.local", "bob", "bob-dev-password", ("user",)),
)


@dataclass(frozen=True)
class SeedReport:
    """What a seed run did."""

    rows_changed: int
    created: tuple[SeedAccount, ...]
    existing: tuple[SeedAccount, ...]


def seed_world(with_accounts: bool = True) -> SeedReport:
    """Roles and permissions, plus the demo accounts when ``with_accounts``."""
    changed = sync_roles()
    created: list[SeedAccount] = []
    existing: list[SeedAccount] = []
    if with_accounts:
        for acct in DEV_ACCOUNTS:
            if find_by_login(acct.username) is not None:
                existing.append(acct)
                continue
            create_user(acct.email, acct.username, acct.password, acct.roles)
            created.append(acct)
            changed += 1
    return SeedReport(changed, tuple(created), tuple(existing))
