"""A live bot's trades, equity and performance: read after real ticks, owner only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.backtest import run_backtest
from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.strategies import validate_strategy
from models.bot_runs import BotRun, broker_config, current_run, start_bot
from models.bot_ticks import run_equity, run_span
from models.bots import Bot, create_bot
from models.candles import read_candles
from models.instruments import sync_instruments
from models.market_data import load_history
from tests.helpers import bearer
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
def owner(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> Any:
    provider = SyntheticProvider()
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    btc = next(i for i in instruments if i.symbol == "BTC-USD")
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
    load_history(provider, btc, spec, SPAN_START - 2 * DAY, END)
    user = make_user()
    db.commit()
    user.headers = bearer(login(user.username)["access_token"])
    return user


@pytest.fixture
def ticked(db: Any, owner: Any) -> BotRun:
    """A bot started at ``STARTED_AT`` and ticked up to the last hour before ``END``."""
    bot = create_bot(owner.id, BOT)
    start_bot(owner.id, bot.id, limit=10, now=STARTED_AT)
    run = current_run(bot)
    assert run is not None
    db.commit()
    # A catch-up tick for most of the span, then candle by candle as the dispatcher would.
    assert tick_bots([str(run.id)], END - 6 * HOUR)["ticked"] == [str(run.id)]
    for ts in range(END - 5 * HOUR, END, HOUR):
        assert tick_bots([str(run.id)], ts)["ticked"] == [str(run.id)]
    db.refresh(run)
    return run


def url(run_or_bot: Any, what: str) -> str:
    bot_id = run_or_bot.bot_id if isinstance(run_or_bot, BotRun) else run_or_bot.id
    return f"/api/v1/bots/{bot_id}/{what}"


def test_trades_equity_and_performance_of_a_ticked_run(
    client: FlaskClient, db: Any, owner: Any, ticked: BotRun
) -> None:
    points = run_equity(ticked.id)
    assert len(points) > 100

    equity = client.get(url(ticked, "equity"), query_string={"limit": 5000}, headers=owner.headers)
    assert equity.status_code == 200, equity.json
    assert equity.json["rows"] == [[ts, value] for ts, value in points]
    assert equity.json["total"] == len(points) and equity.json["next_cursor"] is None

    perf = client.get(url(ticked, "performance"), headers=owner.headers)
    assert perf.status_code == 200, perf.json
    body = perf.json
    metrics = body["metrics"]
    assert metrics["bars"] == len(points)
    assert metrics["final_equity"] == points[-1][1] == body["equity"]
    assert body["run_id"] == str(ticked.id) and body["status"] == "running"
    assert body["last_candle_ts"] == END - HOUR == ticked.last_candle_ts
    assert body["last_tick_time"].startswith("2025-12-31T23:00:00")
    assert body["cash"] == ticked.broker_state["cash"]

    # The live metric set is the backtest's over the same bars, to the last digit.
    bot = db.get(Bot, ticked.bot_id)
    anchor, first = run_span(ticked, "1h", validate_strategy(bot.strategy).warmup)
    rows = read_candles(bot.instrument_id, "1h", anchor, END, limit=10**6)
    expected = run_backtest(
        Candles.from_rows(rows), bot.strategy, bot.risk, broker_config(bot), trade_from_ms=first
    )
    assert metrics == expected.metrics.as_dict()
    assert metrics["trades"] >= 3

    trades = client.get(
        url(ticked, "trades"), query_string={"page_size": 100}, headers=owner.headers
    )
    assert trades.status_code == 200, trades.json
    assert trades.json["total"] == metrics["trades"] == len(trades.json["items"])
    first_trade = trades.json["items"][0]
    assert first_trade["seq"] == 1
    assert first_trade["client_order_id"].startswith(f"{ticked.id}:")
    assert first_trade["entry_time"].endswith("+00:00")
    pnl = [t["pnl"] for t in trades.json["items"]]
    assert pnl == expected.trades.pnl.tolist()
    page2 = client.get(
        url(ticked, "trades"), query_string={"page": 2, "page_size": 2}, headers=owner.headers
    )
    assert [t["seq"] for t in page2.json["items"]] == [3, 4]

    # The open position and its unrealized P&L at the last close.
    units = ticked.broker_state["units"]
    close = rows[-1][4]
    assert body["mark_price"] == close
    if units:
        entry = ticked.broker_state["entry_price"]
        assert body["position"]["units"] == abs(units)
        assert body["position"]["side"] == ("long" if units > 0 else "short")
        assert body["unrealized_pnl"] == pytest.approx(units * (close - entry))
    else:
        assert body["position"] is None and body["unrealized_pnl"] == 0.0


def test_equity_for_a_chart_and_by_cursor(client: FlaskClient, owner: Any, ticked: BotRun) -> None:
    points = run_equity(ticked.id)
    chart = client.get(url(ticked, "equity"), query_string={"points": 10}, headers=owner.headers)
    assert chart.status_code == 200
    rows = chart.json["rows"]
    assert 2 <= len(rows) <= 11
    assert rows[0] == list(points[0]) and rows[-1] == list(points[-1])
    seen: list[list[float]] = []
    cursor = None
    while True:
        query = {"limit": 50} | ({"cursor": cursor} if cursor is not None else {})
        page = client.get(url(ticked, "equity"), query_string=query, headers=owner.headers).json
        seen += page["rows"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [list(p) for p in points]


def test_another_users_bot_is_a_404_and_a_bot_never_started_has_no_rows(
    client: FlaskClient,
    owner: Any,
    ticked: BotRun,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    stranger = make_user()
    headers = bearer(login(stranger.username)["access_token"])
    for what in ("trades", "equity", "performance"):
        response = client.get(url(ticked, what), headers=headers)
        assert response.status_code == 404, what
        assert response.json["message"] == "No bot with that id."

    idle = create_bot(owner.id, {**BOT, "name": "idle"})
    trades = client.get(url(idle, "trades"), headers=owner.headers)
    assert trades.status_code == 200 and trades.json["items"] == [] and trades.json["total"] == 0
    equity = client.get(url(idle, "equity"), headers=owner.headers)
    assert equity.json == {"rows": [], "total": 0, "next_cursor": None}
    perf = client.get(url(idle, "performance"), headers=owner.headers).json
    assert perf["run_id"] is None and perf["metrics"] is None and perf["position"] is None
