"""Building leaderboard inputs in tests: owners, public live bots and their snapshots.

Bots and runs are made through the model helpers (create_bot, start_bot); the snapshots
(run_performance rows, written by the performance job in production) are inserted here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import Bot, create_bot
from models.bots.runs import current_run, start_bot
from models.db import session as db
from models.identity.tables import User
from models.identity.users import create_user
from models.leaderboards.generations import Recomputed, recompute
from models.market.instruments import sync_instruments
from models.performance.tables import PERIODS, RunPerformance

NOW = datetime(2026, 6, 1, tzinfo=UTC)
AS_OF_MS = int(NOW.timestamp() * 1000) - 3_600_000
_names = iter(range(1, 1_000_000))


def instruments() -> None:
    """The synthetic instruments (no candles needed: nothing here ticks)."""
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    db.flush()


def owner(name: str | None = None) -> User:
    """A new user (flushed)."""
    username = name or f"lb{next(_names)}_{uuid.uuid4().hex[:6]}"
    return create_user(f"{username}@example.com", username, "correct-horse-battery")


def strategy(n: int, template: str = "sma_crossover") -> dict[str, Any]:
    """The ``n``-th distinct configuration of a crossover template (sma_ or ema_crossover)."""
    return {"template": template, "params": {"fast": 2 + n % 40, "slow": 100 + n}}


def bot(
    user: User,
    *,
    n: int | None = None,
    symbol: str = "BTC-USD",
    template: str = "sma_crossover",
    visibility: str = "public",
    live: bool = True,
    created: datetime | None = None,
    config: dict[str, Any] | None = None,
) -> Bot:
    """A bot of ``user``, started if ``live``; a configuration of its own unless ``config``."""
    k = n if n is not None else next(_names)
    made = create_bot(
        user.id,
        {
            "name": f"bot-{k}-{uuid.uuid4().hex[:4]}",
            "symbol": symbol,
            "timeframe": "1h",
            "strategy": config or strategy(k, template),
            "initial_capital": 10_000.0,
            "fee": 0.001,
            "slippage_bps": 0.0,
            "visibility": visibility,
        },
    )
    if created is not None:
        made.created_at = created
    if live:
        start_bot(user.id, made.id, limit=10_000, now=NOW - timedelta(days=100))
    db.flush()
    return made


def snapshot(
    target: Bot,
    period: str = "all",
    *,
    days: float = 30.0,
    trades: int = 10,
    total_return: float | None = 0.1,
    sharpe: float | None = 1.0,
    psr: float | None = 0.9,
    calmar: float | None = 2.0,
    max_drawdown: float = -0.05,
) -> RunPerformance:
    """Insert (or replace) the bot's current run's snapshot for ``period``."""
    run = current_run(target)
    assert run is not None, "start the bot first"
    existing = db.get(RunPerformance, (run.id, period))
    if existing is not None:
        db.delete(existing)
        db.flush()
    row = RunPerformance(
        run_id=run.id,
        period=period,
        metrics_version="2",
        as_of_ts=AS_OF_MS,
        start_ts=AS_OF_MS - int(days * 86_400_000),
        days_tracked=days,
        total_return=total_return,
        annualized_return=None,
        annualized_volatility=None,
        sharpe=sharpe,
        sortino=None,
        calmar=calmar,
        psr=psr,
        max_drawdown=max_drawdown,
        trades=trades,
        win_rate=None,
        profit_factor=None,
    )
    db.add(row)
    db.flush()
    return row


def ranked(target: Bot, **figures: Any) -> Bot:
    """Give the bot the same snapshot in every period (``figures`` as :func:`snapshot`)."""
    for period in PERIODS:
        snapshot(target, period, **figures)
    return target


def run_recompute(
    *, min_days: int = 7, min_trades: int = 5, keep: int = 3, top_n: int = 10, **kwargs: Any
) -> Recomputed:
    """One recompute with the default settings (or those given)."""
    return recompute(
        kwargs.pop("now", NOW),
        min_days=min_days,
        min_trades=min_trades,
        keep=keep,
        top_n=top_n,
        **kwargs,
    )
