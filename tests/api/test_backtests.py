"""Backtests end to end: API -> RQ ``backtests`` queue -> engine -> Postgres, and back out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import func, select, text

from models.backtests.backtests import Backtest, BacktestTrade, request_cancel
from tests.helpers import bearer, load_btc_history
from workers import backtests as backtest_jobs
from workers.main import build_worker
from workers.queues import BACKTESTS

DAY = 86_400_000
HOUR = 3_600_000
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
START = END - 20 * DAY
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}


@pytest.fixture
def market(db: Any) -> None:
    load_btc_history(START, END)
    db.commit()


@pytest.fixture
def bot_id(client: FlaskClient, market: None, owner: dict[str, str]) -> str:
    body = {"name": "sma", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    response = client.post("/api/v1/bots", json=body, headers=owner)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def drain(app: Flask) -> None:
    assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True) is True


def post(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        "/api/v1/backtests", json={"start": START, "end": END, **body}, headers=headers
    )


def test_a_backtest_runs_through_the_queue_and_its_results_read_back(
    app: Flask, client: FlaskClient, owner: dict[str, str], bot_id: str, redis: Redis
) -> None:
    response = post(client, owner, bot_id=bot_id, slippage_bps=2)
    assert response.status_code == 202, response.json
    queued = response.json
    assert queued["status"] == "queued" and queued["progress"] == 0
    assert response.headers["Location"] == f"/api/v1/backtests/{queued['id']}"
    spec = queued["spec"]
    assert spec["strategy"] == SMA and spec["slippage_bps"] == 2 and spec["bot_id"] == bot_id
    job = Queue(BACKTESTS, connection=redis).fetch_job(f"backtest-{queued['id']}")
    assert job is not None and job.args == (queued["id"],)

    drain(app)
    done = client.get(response.headers["Location"], headers=owner).json
    assert done["status"] == "succeeded" and done["progress"] == 100, done
    assert done["bars"] == 20 * 24 and done["error"] is None
    assert done["engine_version"] and done["metrics_version"] and done["candles_fingerprint"]
    assert done["data_changed"] is False
    assert done["queued_ms"] >= 0 and done["run_ms"] >= 0
    metrics = done["metrics"]
    for key in ("total_return", "sharpe", "max_drawdown", "win_rate", "exposure"):
        assert key in metrics, key
    assert -1 < metrics["total_return"] < 10

    trades = client.get(f"{response.headers['Location']}/trades?page_size=100", headers=owner).json
    assert trades["total"] == metrics["trades"] > 0
    first = trades["items"][0]
    assert first["seq"] == 1 and first["side"] == "long" and first["exit_reason"]
    assert datetime.fromisoformat(first["entry_time"]) >= datetime.fromtimestamp(START / 1000, UTC)
    assert first["exit_time"] > first["entry_time"]

    chart = client.get(f"{response.headers['Location']}/equity?points=50", headers=owner).json
    assert chart["total"] == 480 and len(chart["rows"]) == 50
    assert chart["rows"][0][0] == START and chart["rows"][-1][0] == END - HOUR
    assert isinstance(chart["rows"][0][0], int)  # epoch ms stay integers in the JSON
    rows: list[list[float]] = []
    url = f"{response.headers['Location']}/equity?limit=200"
    while url:
        page = client.get(url, headers=owner).json
        rows += page["rows"]
        cursor = page["next_cursor"]
        url = f"{response.headers['Location']}/equity?limit=200&cursor={cursor}" if cursor else ""
    assert [r[0] for r in rows] == list(range(START, END, HOUR))
    assert rows[-1][1] == pytest.approx(chart["rows"][-1][1])
    listing = client.get("/api/v1/backtests?status=succeeded", headers=owner).json
    assert [b["id"] for b in listing["items"]] == [queued["id"]]


def test_running_the_job_again_leaves_one_result_set(
    app: Flask, client: FlaskClient, db: Any, owner: dict[str, str], bot_id: str
) -> None:
    backtest_id = post(client, owner, bot_id=bot_id).json["id"]
    drain(app)
    count = db.scalar(select(func.count()).select_from(BacktestTrade))
    first = client.get(f"/api/v1/backtests/{backtest_id}", headers=owner).json
    # Delivered twice: a finished backtest is left alone ...
    assert backtest_jobs.run_backtest(backtest_id) == "succeeded"
    # ... and a re-run after a crash (status still running) replaces, never adds.
    db.execute(text("UPDATE backtests SET status = 'running' WHERE id = :i"), {"i": backtest_id})
    db.commit()
    assert backtest_jobs.run_backtest(backtest_id) == "succeeded"
    assert db.scalar(select(func.count()).select_from(BacktestTrade)) == count
    again = client.get(f"/api/v1/backtests/{backtest_id}", headers=owner).json
    assert again["metrics"] == first["metrics"] and again["attempts"] == 2


def test_inline_spec_and_a_changed_dataset_is_flagged(
    app: Flask, client: FlaskClient, db: Any, market: None, owner: dict[str, str]
) -> None:
    response = post(
        client,
        owner,
        symbol="BTC-USD",
        timeframe="4h",
        strategy={"template": "rsi_mean_reversion", "params": {}},
        risk={"stop_loss": 0.03},
        initial_capital=5000,
    )
    assert response.status_code == 202, response.json
    assert response.json["spec"]["bot_id"] is None
    assert response.json["spec"]["risk"]["stop_loss"] == 0.03
    drain(app)
    url = response.headers["Location"]
    assert client.get(url, headers=owner).json["bars"] == 20 * 6
    db.execute(
        text(
            "UPDATE candles SET close = close * 1.0001 WHERE timeframe = '4h' "
            "AND ts = (SELECT max(ts) FROM candles WHERE timeframe = '4h')"
        )
    )
    db.commit()
    assert client.get(url, headers=owner).json["data_changed"] is True


def test_risk_given_with_a_bot_merges_over_the_bots_risk(
    client: FlaskClient, owner: dict[str, str], bot_id: str
) -> None:
    bot_risk = {"stop_loss": 0.05, "take_profit": 0.2}
    client.patch(f"/api/v1/bots/{bot_id}", json={"risk": bot_risk}, headers=owner)
    response = post(client, owner, bot_id=bot_id, risk={"take_profit": 0.3, "trailing_stop": None})
    assert response.status_code == 202, response.json
    risk = response.json["spec"]["risk"]
    assert risk["stop_loss"] == 0.05 and risk["take_profit"] == 0.3  # kept, and replaced
    assert risk["trailing_stop"] is None and risk["direction"] == "long_only"


@pytest.mark.parametrize(
    ("body", "status", "text_"),
    [
        ({"start": END, "end": START}, 422, "start must be before end"),
        ({"symbol": "NOPE-USD"}, 422, "NOPE-USD"),
        ({"timeframe": "1m", "start": END - 900 * DAY}, 422, "at most"),
        (
            {"strategy": {"template": "sma_crossover", "params": {"fast": 9, "slow": 3}}},
            422,
            "slow",
        ),
        ({"end": "tomorrow-ish"}, 422, "end"),
    ],
)
def test_bad_specs_are_refused_before_enqueueing(
    client: FlaskClient,
    market: None,
    owner: dict[str, str],
    redis: Redis,
    body: dict[str, Any],
    status: int,
    text_: str,
) -> None:
    inline = {"symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA, **body}
    response = post(client, owner, **inline)
    assert response.status_code == status, response.json
    assert text_ in str(response.json)
    assert Queue(BACKTESTS, connection=redis).count == 0


def test_other_users_objects_are_404(
    client: FlaskClient,
    owner: dict[str, str],
    bot_id: str,
    make_user: Callable[..., Any],
    login: Callable[..., dict[str, Any]],
) -> None:
    stranger = bearer(login(make_user().username)["access_token"])
    assert post(client, stranger, bot_id=bot_id).status_code == 404
    backtest_id = post(client, owner, bot_id=bot_id).json["id"]
    for suffix in ("", "/trades", "/equity"):
        assert (
            client.get(f"/api/v1/backtests/{backtest_id}{suffix}", headers=stranger).status_code
            == 404
        )
    assert client.delete(f"/api/v1/backtests/{backtest_id}", headers=stranger).status_code == 404
    assert client.get("/api/v1/backtests", headers=stranger).json["total"] == 0


def test_quota_of_queued_and_running_backtests(
    app: Flask, client: FlaskClient, owner: dict[str, str], bot_id: str
) -> None:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(backtest_quota_user=2)
    try:
        assert post(client, owner, bot_id=bot_id).status_code == 202
        assert post(client, owner, bot_id=bot_id).status_code == 202
        third = post(client, owner, bot_id=bot_id)
        assert third.status_code == 429 and "limit" in third.json["message"]
        drain(app)  # both finish: the quota frees up
        assert post(client, owner, bot_id=bot_id).status_code == 202
    finally:
        app.extensions["botyard.settings"] = original


def test_cancel_a_queued_backtest_never_runs(
    app: Flask, client: FlaskClient, owner: dict[str, str], bot_id: str, redis: Redis
) -> None:
    backtest_id = post(client, owner, bot_id=bot_id).json["id"]
    cancelled = client.delete(f"/api/v1/backtests/{backtest_id}", headers=owner)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert Job.fetch(f"backtest-{backtest_id}", connection=redis).get_status() == JobStatus.CANCELED
    assert backtest_jobs.run_backtest(backtest_id) == "cancelled"  # a stray delivery does nothing
    body = client.get(f"/api/v1/backtests/{backtest_id}", headers=owner).json
    assert body["status"] == "cancelled" and body["started_at"] is None and body["metrics"] is None
    again = client.delete(f"/api/v1/backtests/{backtest_id}", headers=owner)
    assert again.status_code == 409


def test_cancel_a_running_backtest_stops_at_the_next_checkpoint(
    app: Flask,
    client: FlaskClient,
    db: Any,
    owner: dict[str, str],
    bot_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backtest_id = post(client, owner, bot_id=bot_id).json["id"]
    load = backtest_jobs._load_candles

    def load_then_cancel(spec: dict[str, Any]) -> Any:
        candles = load(spec)
        # The owner's DELETE arrives while the job runs.
        request_cancel(db.get(Backtest, backtest_id), datetime.now(UTC))
        db.commit()
        return candles

    monkeypatch.setattr(backtest_jobs, "_load_candles", load_then_cancel)
    drain(app)
    body = client.get(f"/api/v1/backtests/{backtest_id}", headers=owner).json
    assert body["status"] == "cancelled" and body["started_at"] is not None
    assert body["metrics"] is None and body["finished_at"] is not None
    trades = client.get(f"/api/v1/backtests/{backtest_id}/trades", headers=owner).json
    assert trades["total"] == 0


def test_failures_are_recorded_with_a_safe_reason(
    app: Flask,
    client: FlaskClient,
    owner: dict[str, str],
    bot_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No candles in the range: failed, with a message the owner can act on.
    empty = post(client, owner, bot_id=bot_id, start=START - 40 * DAY, end=START - 30 * DAY).json
    drain(app)
    body = client.get(f"/api/v1/backtests/{empty['id']}", headers=owner).json
    assert body["status"] == "failed"
    assert body["error"] == "No 1h candles for BTC-USD in that range."

    # A crash: recorded as failed with a generic message, and raised for RQ (and the logs).
    crashed = post(client, owner, bot_id=bot_id).json

    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals at 0xdeadbeef")

    monkeypatch.setattr(backtest_jobs, "run_engine", explode)
    with pytest.raises(RuntimeError):
        backtest_jobs.run_backtest(crashed["id"])
    body = client.get(f"/api/v1/backtests/{crashed['id']}", headers=owner).json
    assert body["status"] == "failed" and "0xdeadbeef" not in body["error"]
    assert body["error"] == backtest_jobs.GENERIC_FAILURE
