"""GET /bots/{id}/reconciliation: 202 and a poll URL, then 200 with the report; owner only."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, start_bot, stop_bot
from models.bots.ticks import run_equity, run_trades
from tests.api.conftest import BOT, END, HOUR, STARTED_AT
from tests.helpers import load_btc_history
from workers.enqueue import reconciliation_job_id
from workers.main import build_worker
from workers.queues import DEFAULT, get_queue
from workers.ticks import tick_bots


def url(run: BotRun, period: str | None = None) -> str:
    query = f"?period={period}" if period else ""
    return f"/api/v1/bots/{run.bot_id}/reconciliation{query}"


def drain(app: Flask) -> None:
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True


def test_queued_then_served_then_queued_again_after_a_new_candle(
    app: Flask,
    client: FlaskClient,
    redis: Redis,
    live_owner: Any,
    ticked_run: BotRun,
) -> None:
    headers = live_owner.headers
    first = client.get(url(ticked_run), headers=headers)
    assert first.status_code == 202, first.json
    location = f"/api/v1/bots/{ticked_run.bot_id}/reconciliation?period=all"
    assert first.headers["Location"] == location
    body = first.json
    assert body is not None and body["requested_at"]
    assert {k: v for k, v in body.items() if k != "requested_at"} == {
        "bot_id": str(ticked_run.bot_id),
        "run_id": str(ticked_run.id),
        "period": "all",
        "status": "pending",
        "as_of_ts": END - HOUR,
        "job_id": reconciliation_job_id(str(ticked_run.id), "all"),
        "location": location,
    }
    # Polling again while the job waits queues nothing more.
    again = client.get(location, headers=headers)
    assert again.status_code == 202 and again.json is not None
    assert again.json["requested_at"] == body["requested_at"]  # asked for once, still waiting
    assert get_queue(DEFAULT, redis).job_ids == [body["job_id"]]
    drain(app)
    done = client.get(location, headers=headers)
    assert done.status_code == 200, done.json
    report = done.json
    assert report is not None
    trades = run_trades(ticked_run.id)
    assert len(trades) >= 3
    assert report["status"] == "done" and report["error"] is None
    assert (report["bot_id"], report["run_id"]) == (str(ticked_run.bot_id), str(ticked_run.id))
    assert (report["matched"], report["missing"], report["extra"]) == (len(trades), 0, 0)
    assert report["max_price_diff"] == report["max_size_diff"] == 0
    assert report["equity_max_abs_diff"] == report["equity_mean_abs_diff"] == 0
    assert report["equity_final_diff"] == 0 and report["diverged"] is False
    assert report["as_of_ts"] == END - HOUR and report["computed_at"]
    details = report["report"]
    assert details["differences"] == [] and details["differences_total"] == 0
    assert details["equity"]["bars_compared"] == len(run_equity(ticked_run.id))
    assert details["window"] == {"period": "all", "start_ts": None, "end_ts": END - HOUR}
    # A new candle ticked: the stored report is no longer current.
    load_btc_history(END, END + 2 * HOUR)
    assert tick_bots([str(ticked_run.id)], END)["ticked"] == [str(ticked_run.id)]
    later = client.get(location, headers=headers)
    assert later.status_code == 202 and later.json is not None
    assert later.json["as_of_ts"] == END
    drain(app)
    refreshed = client.get(location, headers=headers)
    assert refreshed.status_code == 200 and refreshed.json is not None
    assert refreshed.json["as_of_ts"] == END
    assert refreshed.json["report"]["equity"]["bars_compared"] == len(run_equity(ticked_run.id))


def test_a_period_is_its_own_report(
    app: Flask, client: FlaskClient, live_owner: Any, ticked_run: BotRun
) -> None:
    headers = live_owner.headers
    assert client.get(url(ticked_run, "7d"), headers=headers).status_code == 202
    drain(app)
    week = client.get(url(ticked_run, "7d"), headers=headers)
    assert week.status_code == 200 and week.json is not None
    assert week.json["period"] == "7d"
    start = (END - HOUR) // 86_400_000 * 86_400_000 - 6 * 86_400_000
    assert week.json["report"]["window"]["start_ts"] == start
    bars = len([ts for ts, _ in run_equity(ticked_run.id) if ts >= start])
    assert week.json["report"]["equity"]["bars_compared"] == bars
    # The other periods were not computed along the way.
    assert client.get(url(ticked_run, "30d"), headers=headers).status_code == 202


def test_only_the_owner_sees_it(
    client: FlaskClient,
    live_owner: Any,
    ticked_run: BotRun,
    stranger: dict[str, str],
) -> None:
    response = client.get(url(ticked_run), headers=stranger)
    assert response.status_code == 404 and response.json is not None
    assert response.json["message"] == "No bot with that id."
    missing = "/api/v1/bots/00000000-0000-0000-0000-000000000000/reconciliation"
    assert client.get(missing, headers=live_owner.headers).status_code == 404
    assert client.get(url(ticked_run)).status_code == 401


@pytest.mark.parametrize("query", ["period=1y", "period=", "period=ALL", "periods=7d"])
def test_a_bad_query_is_a_422(
    client: FlaskClient, live_owner: Any, ticked_run: BotRun, query: str
) -> None:
    response = client.get(f"{url(ticked_run)}?{query}", headers=live_owner.headers)
    assert response.status_code == 422, response.json


def test_a_bot_without_a_live_run_is_a_409(db: Any, client: FlaskClient, live_owner: Any) -> None:
    draft = create_bot(live_owner.id, {**BOT, "name": "never started"})
    db.commit()
    response = client.get(f"/api/v1/bots/{draft.id}/reconciliation", headers=live_owner.headers)
    assert response.status_code == 409 and response.json is not None
    assert "no live run" in response.json["message"]
    stopped = create_bot(live_owner.id, {**BOT, "name": "stopped"})
    start_bot(live_owner.id, stopped.id, limit=10, now=STARTED_AT)
    stop_bot(live_owner.id, stopped.id, now=STARTED_AT)
    db.commit()
    response = client.get(f"/api/v1/bots/{stopped.id}/reconciliation", headers=live_owner.headers)
    assert response.status_code == 409


def test_a_report_that_cannot_be_computed_is_served_as_failed(
    app: Flask, db: Any, client: FlaskClient, live_owner: Any, ticked_run: BotRun
) -> None:
    # Only a hand edit of the database breaks a live bot's stored spec like this.
    db.execute(
        sa.update(Bot)
        .where(Bot.id == ticked_run.bot_id)
        .values(strategy={"template": "sma_crossover", "params": {"fast": 9, "slow": 3}})
    )
    db.commit()
    assert client.get(url(ticked_run), headers=live_owner.headers).status_code == 202
    drain(app)
    response = client.get(url(ticked_run), headers=live_owner.headers)
    assert response.status_code == 200 and response.json is not None
    failed = response.json
    assert failed["status"] == "failed" and failed["as_of_ts"] == END - HOUR
    assert "fast" in failed["error"]
    assert failed["matched"] is None and failed["report"] is None and failed["diverged"] is None
    # Served as it is until the run moves on: polling does not queue it again and again.
    again = client.get(url(ticked_run), headers=live_owner.headers)
    assert again.status_code == 200 and again.json == failed


def test_a_run_without_bars_yet_reconciles_to_nothing(
    app: Flask, db: Any, client: FlaskClient, live_owner: Any
) -> None:
    bot = create_bot(live_owner.id, {**BOT, "name": "just started"})
    start_bot(live_owner.id, bot.id, limit=10, now=STARTED_AT)
    db.commit()
    path = f"/api/v1/bots/{bot.id}/reconciliation"
    pending = client.get(path, headers=live_owner.headers)
    assert pending.status_code == 202 and pending.json is not None
    assert pending.json["as_of_ts"] is None
    drain(app)
    response = client.get(path, headers=live_owner.headers)
    assert response.status_code == 200 and response.json is not None
    body = response.json
    assert (body["as_of_ts"], body["matched"], body["missing"], body["extra"]) == (None, 0, 0, 0)
    assert body["equity_max_abs_diff"] == 0 and body["diverged"] is False
    assert body["report"]["equity"]["bars_compared"] == 0
    assert body["report"]["replay"]["final_state_equal"] is True
