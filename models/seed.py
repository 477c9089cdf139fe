"""The development world built by ``flask seed``: idempotent, safe to re-run."""

from __future__ import annotations

from dataclasses import dataclass

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.candles import last_candle_ms
from models.instruments import sync_instruments
from models.market_data import fill_gap
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


def seed_market(now_ms: int, days: int) -> dict[str, int]:
    """Synthetic instruments and ``days`` of 1m history for those that have none yet.

    Instruments that already have candles are left alone (the feed keeps them
    current), so a second seed run changes nothing.
    """
    provider = SyntheticProvider()
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider=provider.name)
    specs = {spec.symbol: spec for spec in SYNTHETIC_INSTRUMENTS}
    empty = [
        (inst, specs[inst.symbol]) for inst in instruments if last_candle_ms(inst.id, "1m") is None
    ]
    loaded = fill_gap(provider, empty, now_ms, days)
    return {symbol: count for symbol, count in loaded.items() if count}
