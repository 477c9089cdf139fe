"""A live bot's execution logs: written by real ticks and lifecycle actions, read by its owner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from models.bots.bots import create_bot
from models.bots.execution_logs import ExecutionLog
from models.bots.runs import BotRun, current_run, pause_bot, resume_bot, start_bot, stop_bot
from models.bots.ticks import run_equity, run_trades
from tests.api.conftest import BOT, END, HOUR, STARTED_AT
from tests.helpers import bearer
from workers.ticks import tick_bots

# The results tests' fixtures: a user with BTC-USD history, and a bot started and ticked_run.


def logs(client: FlaskClient, bot_id: Any, headers: Any, **query: Any) -> Any:
    response = client.get(f"/api/v1/bots/{bot_id}/logs", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def count_logs(db: Any, bot_id: Any) -> int:
    return int(db.scalar(sa.select(sa.func.count()).where(ExecutionLog.bot_id == bot_id)))


def test_ticks_write_run_started_ticks_and_closed_trades(
    client: FlaskClient, db: Any, live_owner: Any, ticked_run: BotRun
) -> None:
    body = logs(client, ticked_run.bot_id, live_owner.headers, limit=500)
    rows = body["rows"]
    assert body["next_cursor"] is None
    assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True)
    assert rows[-1]["event"] == "run_started" and rows[-1]["level"] == "info"
    assert rows[-1]["data"] == {"initial_capital": BOT["initial_capital"]}
    assert rows[-1]["time"].endswith("+00:00") and rows[-1]["candle_ts"] is None

    ticks = [r for r in rows if r["event"] == "tick"]
    points = run_equity(ticked_run.id)
    assert len(ticks) == 6  # one catch-up tick, then five candle by candle
    assert sum(t["data"]["candles"] for t in ticks) == len(points)
    newest = ticks[0]
    assert newest["candle_ts"] == END - HOUR == ticked_run.last_candle_ts
    assert newest["data"]["equity"] == points[-1][1]
    assert newest["data"]["units"] == ticked_run.broker_state["units"]
    assert newest["data"]["cash"] == ticked_run.broker_state["cash"]

    closed = [r for r in rows if r["event"] == "trade_closed"]
    trades = run_trades(ticked_run.id)
    assert len(closed) == len(trades) >= 3
    assert sum(t["data"]["trades_closed"] for t in ticks) == len(trades)
    by_id = {r["data"]["client_order_id"]: r for r in closed}
    for trade in trades:
        entry = by_id[trade.client_order_id]
        assert entry["candle_ts"] == trade.exit_ts == entry["data"]["exit_ts"]
        assert entry["data"]["pnl"] == trade.pnl and entry["data"]["side"] == trade.side
        assert entry["data"]["exit_reason"] == trade.exit_reason

    # A tick delivered again (or an older one) writes nothing.
    before = count_logs(db, ticked_run.bot_id)
    assert tick_bots([str(ticked_run.id)], END - HOUR)["skipped"] == [str(ticked_run.id)]
    assert tick_bots([str(ticked_run.id)], END - 3 * HOUR)["skipped"] == [str(ticked_run.id)]
    assert count_logs(db, ticked_run.bot_id) == before


def test_filters_and_cursor_paging(
    client: FlaskClient, live_owner: Any, ticked_run: BotRun
) -> None:
    everything = logs(client, ticked_run.bot_id, live_owner.headers, limit=500)["rows"]
    assert len(everything) > 10

    only_ticks = logs(client, ticked_run.bot_id, live_owner.headers, event="tick", limit=500)[
        "rows"
    ]
    assert only_ticks == [r for r in everything if r["event"] == "tick"]
    assert logs(client, ticked_run.bot_id, live_owner.headers, level="warning")["rows"] == []
    info = logs(client, ticked_run.bot_id, live_owner.headers, level="info", limit=500)["rows"]
    assert info == everything
    assert (
        logs(client, ticked_run.bot_id, live_owner.headers, since="2100-01-01T00:00:00Z")["rows"]
        == []
    )
    assert (
        logs(client, ticked_run.bot_id, live_owner.headers, since=0, limit=500)["rows"]
        == everything
    )

    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor is not None else {})
        page = logs(client, ticked_run.bot_id, live_owner.headers, **query)
        assert len(page["rows"]) <= 3
        seen += page["rows"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything and pages == -(-len(everything) // 3)

    filtered: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 2, "event": "tick"} | ({"cursor": cursor} if cursor else {})
        page = logs(client, ticked_run.bot_id, live_owner.headers, **query)
        filtered += page["rows"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert filtered == only_ticks

    for bad in ({"limit": 501}, {"limit": 0}, {"level": "debug"}, {"cursor": "x"}, {"nope": 1}):
        response = client.get(
            f"/api/v1/bots/{ticked_run.bot_id}/logs", query_string=bad, headers=live_owner.headers
        )
        assert response.status_code == 422, bad


def test_a_stranger_gets_a_404(
    client: FlaskClient,
    live_owner: Any,
    ticked_run: BotRun,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
) -> None:
    stranger = make_user()
    headers = bearer(login(stranger.username)["access_token"])
    response = client.get(f"/api/v1/bots/{ticked_run.bot_id}/logs", headers=headers)
    assert response.status_code == 404
    assert response.json["message"] == "No bot with that id."
    missing = client.get(f"/api/v1/bots/{ticked_run.id}/logs", headers=live_owner.headers)
    assert missing.status_code == 404
    idle = create_bot(live_owner.id, {**BOT, "name": "idle"})
    assert logs(client, idle.id, live_owner.headers) == {"rows": [], "next_cursor": None}


def test_failures_errors_and_lifecycle_actions_are_logged(
    app: Flask, client: FlaskClient, db: Any, live_owner: Any
) -> None:
    bot = create_bot(live_owner.id, BOT)
    start_bot(live_owner.id, bot.id, limit=10, now=STARTED_AT)
    run = current_run(bot)
    assert run is not None
    pause_bot(live_owner.id, bot.id, now=STARTED_AT)
    resume_bot(live_owner.id, bot.id)
    db.execute(sa.update(BotRun).where(BotRun.id == run.id).values(broker_state={"bogus": 1}))
    db.commit()
    ts = END - 10 * HOUR
    assert tick_bots([str(run.id)], ts)["failed"] == [str(run.id)]

    warnings = logs(client, bot.id, live_owner.headers, level="warning")["rows"]
    assert [(r["level"], r["event"], r["candle_ts"]) for r in warnings] == [
        ("warning", "tick_failed", ts)
    ]
    assert "TypeError" in warnings[0]["data"]["error"] and warnings[0]["data"]["failures"] == 1
    # The failed tick's savepoint was rolled back: no tick entry survived it.
    events = [r["event"] for r in logs(client, bot.id, live_owner.headers)["rows"]]
    assert events == ["tick_failed", "run_resumed", "run_paused", "run_started"]

    limit = app.extensions["botyard.settings"].bot_max_failures
    for n in range(2, limit + 1):
        assert tick_bots([str(run.id)], ts + n * HOUR)["failed"] == [str(run.id)]
    errors = logs(client, bot.id, live_owner.headers, level="error")["rows"]
    assert [(r["event"], r["data"]["failures"]) for r in errors] == [("run_errored", limit)]
    assert "TypeError" in errors[0]["data"]["error"]
    assert len(logs(client, bot.id, live_owner.headers, event="tick_failed")["rows"]) == limit

    start_bot(live_owner.id, bot.id, limit=10, now=STARTED_AT)
    stop_bot(live_owner.id, bot.id, now=STARTED_AT)
    db.commit()
    newest = logs(client, bot.id, live_owner.headers, limit=2)["rows"]
    assert [r["event"] for r in newest] == ["run_stopped", "run_started"]
