"""The development world built by ``flask seed``: idempotent, safe to re-run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.backtests.backtests import Limits, build_spec, create_backtest
from models.bots.bots import Bot, create_bot
from models.bots.runs import start_bot
from models.db import session as db
from models.identity.rbac import sync_roles
from models.identity.users import create_user, find_by_login
from models.market.candles import last_candle_ms
from models.market.data import fill_gap
from models.market.instruments import sync_instruments
from models.people.activities import record
from models.people.preferences import trading_defaults
from models.people.tables import AccountSettings, Webhook
from models.people.webhooks import create_webhook


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
    # Demo traders: the public track records of models/seed_tracks.py are theirs.
    *(
        SeedAccount(f"{name}@botyard.local", name, f"{name}-dev-password", ("user",))
        for name in ("carol", "dave", "erin", "frank", "grace", "heidi")
    ),
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


@dataclass(frozen=True)
class DemoBot:
    """A bot the seed gives a demo user."""

    owner: str
    name: str
    symbol: str
    timeframe: str
    strategy: dict[str, Any]
    risk: dict[str, Any]
    start: bool = False  # started on a live paper run when made, so the feed drives it


_SOL_RULES = {
    "entry": {
        "all": [
            {"op": ">", "left": {"price": "close"}, "right": {"ind": "ema", "period": 50}},
            {"op": "crosses_above", "left": {"ind": "rsi", "period": 14}, "right": {"const": 55}},
        ]
    },
    "exit": {"op": "crosses_below", "left": {"ind": "rsi", "period": 14}, "right": {"const": 45}},
}

DEMO_BOTS = (
    DemoBot(
        "alice",
        "BTC trend (SMA 20/50)",
        "BTC-USD",
        "1h",
        {"template": "sma_crossover", "params": {"fast": 20, "slow": 50}},
        {"stop_loss": 0.05},
    ),
    DemoBot(
        "alice",
        "ETH dip buyer (RSI)",
        "ETH-USD",
        "15m",
        {"template": "rsi_mean_reversion", "params": {}},
        {},
    ),
    DemoBot(
        "bob",
        "EUR-USD bands",
        "EUR-USD",
        "1h",
        {"template": "bollinger_bands", "params": {}},
        {"direction": "long_short"},
    ),
    DemoBot(
        "bob", "SOL momentum rules", "SOL-USD", "1h", {"rules": _SOL_RULES}, {"trailing_stop": 0.08}
    ),
    # 1m bots tick on every candle the feed closes: live activity right after `up.sh`.
    DemoBot(
        "alice",
        "BTC live scalper (SMA 5/20, 1m)",
        "BTC-USD",
        "1m",
        {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}},
        {"stop_loss": 0.01},
        start=True,
    ),
    DemoBot(
        "bob",
        "ETH live dip buyer (RSI, 1m)",
        "ETH-USD",
        "1m",
        {"template": "rsi_mean_reversion", "params": {}},
        {},
        start=True,
    ),
)
DEMO_BACKTEST_DAYS = 14


@dataclass(frozen=True)
class SeededBots:
    """What :func:`seed_bots` made: backtests for the caller to enqueue, bots it started."""

    queued: list[uuid.UUID]
    started: list[str]


def seed_bots(now_ms: int) -> SeededBots:
    """Demo bots for the demo users, each with a backtest of its last two weeks.

    Only bots that do not exist yet are made (so a second run changes nothing); their
    backtests are created ``queued`` and their ids returned for the caller to enqueue.
    Demo bots marked ``start`` are started on a live paper run when they are made (a
    bot that exists already is left as it is, even if its owner stopped it).
    """
    generous = Limits(max_bars=10**7, max_days=3660, quota=10**6)
    queued: list[uuid.UUID] = []
    started: list[str] = []
    for demo in DEMO_BOTS:
        owner = find_by_login(demo.owner)
        exists = owner is not None and db.scalar(
            select(Bot.id).where(Bot.owner_id == owner.id, Bot.name == demo.name)
        )
        if owner is None or exists:
            continue
        bot = create_bot(
            owner.id,
            {
                "name": demo.name,
                "description": "A demo bot made by `flask seed`.",
                "symbol": demo.symbol,
                "timeframe": demo.timeframe,
                "strategy": demo.strategy,
                "risk": demo.risk,
                "initial_capital": 10_000.0,
                "fee": 0.001,
                "slippage_bps": 5.0,
                # The live demo bots are public: their owners' profiles list them.
                "visibility": "public" if demo.start else "private",
            },
        )
        span = {"start": now_ms - DEMO_BACKTEST_DAYS * 86_400_000, "end": now_ms}
        backtest = create_backtest(
            owner.id, build_spec(span, bot, now_ms, generous, trading_defaults(owner.id)), 10**6
        )
        queued.append(backtest.id)
        if demo.start:
            start_bot(owner.id, bot.id, limit=10**6, now=datetime.fromtimestamp(now_ms / 1000, UTC))
            started.append(demo.name)
    return SeededBots(queued, started)


@dataclass(frozen=True)
class DemoProfile:
    """Profile fields and settings changes the seed gives a demo user."""

    display_name: str
    bio: str
    timezone: str
    locale: str
    settings: dict[str, Any]


DEMO_PROFILES = {
    "alice": DemoProfile(
        "Alice Liddell",
        "Trend follower. Paper-trading BTC and ETH while the backtests argue.",
        "Europe/London",
        "en-GB",
        {"notifications": {"bot.trade": {"in_app": True}}},
    ),
    "bob": DemoProfile(
        "Bob Builder",
        "Mean reversion on FX and SOL; reads every equity curve twice.",
        "America/New_York",
        "en-US",
        {
            "email_digest": "daily",
            "notifications": {"backtest.finished": {"email": False, "digest": True}},
            "trading_defaults": {"initial_capital": 25_000.0, "fee": 0.0005},
        },
    ),
    **{
        name: DemoProfile(display, bio, zone, locale, {})
        for name, display, bio, zone, locale in (
            (
                "carol",
                "Carol Chen",
                "Trend follower; one rule: never fight the SMA.",
                "Asia/Singapore",
                "en-SG",
            ),
            (
                "dave",
                "Dave Okafor",
                "Buys the dip, sells the rip, logs everything.",
                "Africa/Lagos",
                "en-NG",
            ),
            (
                "erin",
                "Erin Novak",
                "Bands and mean reversion, long and short.",
                "Europe/Prague",
                "cs-CZ",
            ),
            ("frank", "Frank Moreau", "Writes rules, not hunches.", "Europe/Paris", "fr-FR"),
            (
                "grace",
                "Grace Hopper-Lee",
                "Swing trades on the slow timeframes.",
                "America/Chicago",
                "en-US",
            ),
            ("heidi", "Heidi Sato", "Breakouts and crossovers, patiently.", "Asia/Tokyo", "ja-JP"),
        )
    },
}
# The demo webhook's events: what a development receiver is worth watching for.
DEMO_WEBHOOK_EVENTS = ("backtest.finished", "backtest.failed", "bot.started", "bot.error")


def seed_people(webhook_url: str | None, webhook_secret: str | None) -> int:
    """Profiles, settings and a first activity row for the demo users; alice's webhook.

    Only what is missing is made, so a second run changes nothing. With ``webhook_url``,
    alice gets a webhook there (the development receiver), whose secret is set to
    ``webhook_secret`` so the receiver can verify what it gets. Returns rows changed.
    """
    changed = 0
    for username, demo in DEMO_PROFILES.items():
        user = find_by_login(username)
        if user is None or user.display_name is not None:
            continue
        user.display_name, user.bio = demo.display_name, demo.bio
        user.timezone, user.locale = demo.timezone, demo.locale
        record("auth.registered", user.id, object_type="user", object_id=user.id)
        if demo.settings:
            db.merge(AccountSettings(user_id=user.id, document=demo.settings))
            record("settings.changed", user.id, data={"keys": sorted(demo.settings)})
        changed += 1
    alice = find_by_login("alice")
    if webhook_url and webhook_secret and alice is not None:
        changed += _seed_webhook(alice.id, webhook_url, webhook_secret)
    return changed


def _seed_webhook(user_id: uuid.UUID, url: str, secret: str) -> int:
    existing = db.scalars(select(Webhook).where(Webhook.user_id == user_id, Webhook.url == url))
    hook = existing.first()
    if hook is None:
        hook, _ = create_webhook(
            user_id,
            url,
            DEMO_WEBHOOK_EVENTS,
            "Development receiver (Procfile: webhooks)",
            limit=10**6,
            allow_loopback=True,
        )
    elif hook.secret == secret and hook.is_active:
        return 0
    hook.secret = secret
    hook.is_active, hook.consecutive_failures, hook.disabled_at = True, 0, None
    return 1
