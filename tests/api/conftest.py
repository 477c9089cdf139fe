"""Fixtures shared by the API tests: instruments, an owner and a stranger, a ticked live run."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import create_bot
from models.bots.runs import BotRun, current_run, start_bot
from models.market.instruments import sync_instruments
from tests.helpers import bearer, load_btc_history
from workers.ticks import tick_bots

HOUR = 3_600_000
DAY = 24 * HOUR
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_START = END - 6 * DAY
STARTED_AT = datetime.fromtimestamp((SPAN_START + HOUR // 2) / 1000, UTC)
BOT = {
    "name": "sma",
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
    "risk": {"stop_loss": 0.01},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 2.0,
}


@pytest.fixture
def live_owner(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> Any:
    """A user (with ``.headers`` for the API) and BTC-USD 1h history around the span."""
    load_btc_history(SPAN_START - 2 * DAY, END)
    user = make_user()
    db.commit()
    user.headers = bearer(login(user.username)["access_token"])
    return user


@pytest.fixture
def ticked_run(db: Any, live_owner: Any) -> BotRun:
    """A bot started at ``STARTED_AT`` and ticked up to the last hour before ``END``."""
    bot = create_bot(live_owner.id, BOT)
    start_bot(live_owner.id, bot.id, limit=10, now=STARTED_AT)
    run = current_run(bot)
    assert run is not None
    db.commit()
    # A catch-up tick for most of the span, then candle by candle as the dispatcher would.
    # Every bar fresh, so the run equals a backtest of the span (see BOT_FRESH_BARS).
    assert tick_bots([str(run.id)], END - 6 * HOUR, fresh_bars=10**6)["ticked"] == [str(run.id)]
    for ts in range(END - 5 * HOUR, END, HOUR):
        assert tick_bots([str(run.id)], ts)["ticked"] == [str(run.id)]
    db.refresh(run)
    return run


@pytest.fixture
def instruments(db: Any) -> None:
    """The synthetic instruments, without candles."""
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    db.commit()


@pytest.fixture
def owner(auth_headers: dict[str, str]) -> dict[str, str]:
    """Bearer headers of the user whose objects a test creates."""
    return auth_headers


@pytest.fixture
def stranger(make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]) -> dict[str, str]:
    """Bearer headers of another user, who must see none of the owner's objects."""
    return bearer(login(make_user().username)["access_token"])
