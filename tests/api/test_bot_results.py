"""A live bot's trades, equity and performance: read after real ticks, live_owner only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.backtest import run_backtest
from engine.candles import Candles
from engine.strategies import validate_strategy
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, broker_config
from models.bots.ticks import run_equity, run_span
from models.market.candles import read_candles
from tests.api.conftest import BOT, END, HOUR
from tests.helpers import bearer


def url(run_or_bot: Any, what: str) -> str:
    bot_id = run_or_bot.bot_id if isinstance(run_or_bot, BotRun) else run_or_bot.id
    return f"/api/v1/bots/{bot_id}/{what}"


def test_trades_equity_and_performance_of_a_ticked_run(
    app: Flask, client: FlaskClient, db: Any, live_owner: Any, ticked_run: BotRun
) -> None:
    points = run_equity(ticked_run.id)
    assert len(points) > 100

    equity = client.get(
        url(ticked_run, "equity"), query_string={"limit": 5000}, headers=live_owner.headers
    )
    assert equity.status_code == 200, equity.json
    assert equity.json["rows"] == [[ts, value] for ts, value in points]
    assert equity.json["total"] == len(points) and equity.json["next_cursor"] is None

    perf = client.get(url(ticked_run, "performance"), headers=live_owner.headers)
    assert perf.status_code == 200, perf.json
    body = perf.json
    metrics = body["metrics"]
    assert metrics["bars"] == len(points)
    assert metrics["final_equity"] == points[-1][1] == body["equity"]
    assert body["run_id"] == str(ticked_run.id) and body["status"] == "running"
    assert body["last_candle_ts"] == END - HOUR == ticked_run.last_candle_ts
    assert body["last_tick_time"].startswith("2025-12-31T23:00:00")
    assert body["cash"] == ticked_run.broker_state["cash"]

    # The live metric set is the backtest's over the same bars, to the last digit.
    bot = db.get(Bot, ticked_run.bot_id)
    epoch_bars = app.extensions["botyard.settings"].bot_epoch_bars
    anchor, first = run_span(ticked_run, "1h", validate_strategy(bot.strategy).warmup, epoch_bars)
    rows = read_candles(bot.instrument_id, "1h", anchor, END, limit=10**6)
    expected = run_backtest(
        Candles.from_rows(rows), bot.strategy, bot.risk, broker_config(bot), trade_from_ms=first
    )
    assert metrics == expected.metrics.as_dict()
    assert metrics["trades"] >= 3

    trades = client.get(
        url(ticked_run, "trades"), query_string={"page_size": 100}, headers=live_owner.headers
    )
    assert trades.status_code == 200, trades.json
    assert trades.json["total"] == metrics["trades"] == len(trades.json["items"])
    first_trade = trades.json["items"][0]
    assert first_trade["seq"] == 1
    assert first_trade["client_order_id"].startswith(f"{ticked_run.id}:")
    assert first_trade["entry_time"].endswith("+00:00")
    pnl = [t["pnl"] for t in trades.json["items"]]
    assert pnl == expected.trades.pnl.tolist()
    page2 = client.get(
        url(ticked_run, "trades"),
        query_string={"page": 2, "page_size": 2},
        headers=live_owner.headers,
    )
    assert [t["seq"] for t in page2.json["items"]] == [3, 4]

    # The open position and its unrealized P&L at the last close.
    units = ticked_run.broker_state["units"]
    close = rows[-1][4]
    assert body["mark_price"] == close
    if units:
        entry = ticked_run.broker_state["entry_price"]
        assert body["position"]["units"] == abs(units)
        assert body["position"]["side"] == ("long" if units > 0 else "short")
        assert body["unrealized_pnl"] == pytest.approx(units * (close - entry))
    else:
        assert body["position"] is None and body["unrealized_pnl"] == 0.0


def test_equity_for_a_chart_and_by_cursor(
    client: FlaskClient, live_owner: Any, ticked_run: BotRun
) -> None:
    points = run_equity(ticked_run.id)
    chart = client.get(
        url(ticked_run, "equity"), query_string={"points": 10}, headers=live_owner.headers
    )
    assert chart.status_code == 200
    rows = chart.json["rows"]
    assert 2 <= len(rows) <= 11
    assert rows[0] == list(points[0]) and rows[-1] == list(points[-1])
    seen: list[list[float]] = []
    cursor = None
    while True:
        query = {"limit": 50} | ({"cursor": cursor} if cursor is not None else {})
        page = client.get(
            url(ticked_run, "equity"), query_string=query, headers=live_owner.headers
        ).json
        seen += page["rows"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [list(p) for p in points]


def test_another_users_bot_is_a_404_and_a_bot_never_started_has_no_rows(
    client: FlaskClient,
    live_owner: Any,
    ticked_run: BotRun,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    stranger = make_user()
    headers = bearer(login(stranger.username)["access_token"])
    for what in ("trades", "equity", "performance"):
        response = client.get(url(ticked_run, what), headers=headers)
        assert response.status_code == 404, what
        assert response.json["message"] == "No bot with that id."

    idle = create_bot(live_owner.id, {**BOT, "name": "idle"})
    trades = client.get(url(idle, "trades"), headers=live_owner.headers)
    assert trades.status_code == 200 and trades.json["items"] == [] and trades.json["total"] == 0
    equity = client.get(url(idle, "equity"), headers=live_owner.headers)
    assert equity.json == {"rows": [], "total": 0, "next_cursor": None}
    perf = client.get(url(idle, "performance"), headers=live_owner.headers).json
    assert perf["run_id"] is None and perf["metrics"] is None and perf["position"] is None
