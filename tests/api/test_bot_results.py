"""A live bot's trades, equity and performance: read after real ticks, live_owner only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from engine.backtest import run_backtest
from engine.candles import Candles
from engine.metrics import DAY_MS
from engine.strategies import validate_strategy
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, broker_config
from models.bots.ticks import BotEquity, run_equity, run_span, run_trades
from models.market.candles import read_candles
from models.performance.snapshots import snapshot_body, snapshots_for
from tests.api.conftest import BOT, END, HOUR
from tests.engine.test_performance import assert_matches, reference, rollup
from tests.helpers import bearer
from workers.performance import refresh_performance

SHARED = (
    "days_tracked",
    "total_return",
    "annualized_return",
    "annualized_volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "trades",
    "win_rate",
    "profit_factor",
)


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
    assert body["period"] == metrics["period"] == "all"
    assert metrics["start_ts"] == points[0][0]
    assert metrics["as_of_ts"] == metrics["end_ts"] == points[-1][0]
    assert body["as_of"] == body["last_tick_time"]
    assert points[-1][1] == body["equity"]
    assert body["run_id"] == str(ticked_run.id) and body["status"] == "running"
    assert body["last_candle_ts"] == END - HOUR == ticked_run.last_candle_ts
    assert body["last_tick_time"].startswith("2025-12-31T23:00:00")
    assert body["cash"] == ticked_run.broker_state["cash"]

    # The live snapshot (from daily rollups) is the backtest's metric set over the same bars.
    bot = db.get(Bot, ticked_run.bot_id)
    epoch_bars = app.extensions["botyard.settings"].bot_epoch_bars
    anchor, first = run_span(ticked_run, "1h", validate_strategy(bot.strategy).warmup, epoch_bars)
    rows = read_candles(bot.instrument_id, "1h", anchor, END, limit=10**6)
    expected = run_backtest(
        Candles.from_rows(rows), bot.strategy, bot.risk, broker_config(bot), trade_from_ms=first
    )
    backtest = expected.metrics.as_dict()
    for key in SHARED:
        want = backtest["days" if key == "days_tracked" else key]
        assert metrics[key] == (None if want is None else pytest.approx(want, rel=1e-12)), key
    assert metrics["days"] == metrics["days_tracked"]
    assert metrics["trades"] >= 3 and metrics["psr"] is not None

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
    assert equity.json == {
        "rows": [],
        "total": 0,
        "next_cursor": None,
        "resolution": "bar",
        "days": None,
    }
    perf = client.get(url(idle, "performance"), headers=live_owner.headers).json
    assert perf["run_id"] is None and perf["metrics"] is None and perf["position"] is None
    assert perf["period"] == "all" and perf["as_of"] is None
    for what, query in (
        ("performance", {"period": "1y"}),
        ("performance", {"period": "7d", "other": 1}),
        ("equity", {"resolution": "week"}),
        ("equity", {"resolution": "day", "points": 10}),
    ):
        refused = client.get(url(idle, what), query_string=query, headers=live_owner.headers)
        assert refused.status_code == 422, (what, query)


def test_periods_are_stored_snapshots_and_days_are_rollups(
    db: Any, client: FlaskClient, live_owner: Any, ticked_run: BotRun
) -> None:
    points = run_equity(ticked_run.id)
    ts = np.asarray([p[0] for p in points], dtype=np.int64)
    equity = np.asarray([p[1] for p in points])
    trades = run_trades(ticked_run.id)
    exits = np.asarray([t.exit_ts for t in trades], dtype=np.int64)
    pnl = np.asarray([t.pnl for t in trades])
    run = (ts, equity, ticked_run.initial_capital, HOUR, exits, pnl)
    bodies = {}
    for period, days in (("7d", 7), ("30d", 30), ("90d", 90), ("all", None)):
        response = client.get(
            url(ticked_run, "performance"),
            query_string={"period": period},
            headers=live_owner.headers,
        )
        assert response.status_code == 200, response.json
        bodies[period] = response.json["metrics"]
        assert response.json["period"] == period
        assert_matches(bodies[period], reference(run, days))
    stored = snapshots_for([ticked_run.id])[ticked_run.id]
    assert {p: snapshot_body(stored[p])["sharpe"] for p in stored} == {
        p: b["sharpe"] for p, b in bodies.items()
    }

    # Served, not recomputed: a new equity point changes nothing until the job runs.
    last = int(ts[-1]) + HOUR
    db.add(BotEquity(run_id=ticked_run.id, ts=last, equity=float(equity[-1]) * 1.01))
    db.execute(update(BotRun).where(BotRun.id == ticked_run.id).values(last_candle_ts=last))
    db.commit()
    again = client.get(url(ticked_run, "performance"), headers=live_owner.headers).json
    assert again["metrics"] == bodies["all"]
    assert refresh_performance()["runs_recomputed"] == 1
    fresh = client.get(url(ticked_run, "performance"), headers=live_owner.headers).json
    assert fresh["metrics"]["as_of_ts"] == last
    assert fresh["metrics"]["total_return"] == pytest.approx(
        float(equity[-1]) * 1.01 / ticked_run.initial_capital - 1, rel=1e-12
    )

    daily = client.get(
        url(ticked_run, "equity"),
        query_string={"resolution": "day", "limit": 3},
        headers=live_owner.headers,
    ).json
    assert daily["resolution"] == "day" and len(daily["rows"]) == 3
    want = rollup([run])
    assert daily["total"] == len(want.day) + (1 if last // DAY_MS > want.day[-1] else 0)
    assert daily["rows"][0] == [int(want.last_ts[0]), want.close[0]]
    assert daily["days"][0]["day_ts"] == int(want.day[0]) * DAY_MS
    assert daily["days"][0]["bars"] == int((ts // DAY_MS == want.day[0]).sum())
    assert daily["days"][0]["max_drawdown"] == want.max_drawdown[0]
    seen = daily["rows"]
    while daily["next_cursor"] is not None:
        daily = client.get(
            url(ticked_run, "equity"),
            query_string={"resolution": "day", "limit": 3, "cursor": daily["next_cursor"]},
            headers=live_owner.headers,
        ).json
        seen += daily["rows"]
    assert len(seen) == daily["total"] and seen[-1] == [last, float(equity[-1]) * 1.01]
