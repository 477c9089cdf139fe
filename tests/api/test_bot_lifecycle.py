"""Bot lifecycle: start, pause, resume, stop; invalid transitions; runs; per-role limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from engine.broker import BrokerConfig, BrokerState
from models.bots.runs import BotRun
from tests.helpers import bearer

BOTS = "/api/v1/bots"
SMA = {"template": "sma_crossover", "params": {"fast": 10, "slow": 30}}


def new_bot(client: FlaskClient, headers: dict[str, str], **fields: Any) -> str:
    body = {"name": "Trend follower", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    response = client.post(BOTS, json={**body, **fields}, headers=headers)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def act(client: FlaskClient, headers: dict[str, str], bot_id: str, action: str) -> Any:
    return client.post(f"{BOTS}/{bot_id}/{action}", headers=headers)


def runs_of(db: Any, bot_id: str) -> list[BotRun]:
    return list(
        db.scalars(sa.select(BotRun).where(BotRun.bot_id == bot_id).order_by(BotRun.started_at))
    )


def test_start_pause_resume_stop(
    client: FlaskClient, db: Any, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner, initial_capital=2_500, fee=0.002, slippage_bps=7)

    started = act(client, owner, bot_id, "start")
    assert started.status_code == 200, started.json
    body = started.json
    assert body["id"] == bot_id and body["status"] == "running"
    run = body["run"]
    assert run["status"] == "running" and run["started_at"]
    assert run["paused_at"] is None and run["stopped_at"] is None
    assert run["initial_capital"] == 2_500
    assert run["last_candle_ts"] is None and run["consecutive_failures"] == 0
    assert run["error"] is None
    # The run's paper account is the engine's fresh broker state for the bot's capital.
    expected = BrokerState.start(BrokerConfig(initial_capital=2_500)).as_dict()
    assert run["broker_state"] == expected
    assert run["broker_state"]["cash"] == 2_500 and run["broker_state"]["units"] == 0

    paused = act(client, owner, bot_id, "pause")
    assert paused.status_code == 200, paused.json
    assert paused.json["status"] == "paused"
    assert paused.json["run"]["id"] == run["id"]
    assert paused.json["run"]["status"] == "paused" and paused.json["run"]["paused_at"]

    resumed = act(client, owner, bot_id, "resume")
    assert resumed.status_code == 200, resumed.json
    assert resumed.json["status"] == "running"
    assert resumed.json["run"]["id"] == run["id"]
    assert resumed.json["run"]["status"] == "running"
    assert resumed.json["run"]["paused_at"] is None

    stopped = act(client, owner, bot_id, "stop")
    assert stopped.status_code == 200, stopped.json
    assert stopped.json["status"] == "stopped"
    assert stopped.json["run"]["id"] == run["id"]
    assert stopped.json["run"]["status"] == "stopped" and stopped.json["run"]["stopped_at"]

    assert client.get(f"{BOTS}/{bot_id}", headers=owner).json["status"] == "stopped"


def test_a_paused_bot_can_be_stopped(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    act(client, owner, bot_id, "start")
    act(client, owner, bot_id, "pause")
    stopped = act(client, owner, bot_id, "stop")
    assert stopped.status_code == 200, stopped.json
    assert stopped.json["status"] == "stopped" and stopped.json["run"]["status"] == "stopped"


def test_start_after_stop_opens_a_second_run(
    client: FlaskClient, db: Any, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    first = act(client, owner, bot_id, "start").json["run"]["id"]
    act(client, owner, bot_id, "stop")
    again = act(client, owner, bot_id, "start")
    assert again.status_code == 200, again.json
    second = again.json["run"]
    assert second["id"] != first and second["status"] == "running"

    runs = runs_of(db, bot_id)
    assert [str(r.id) for r in runs] == [first, second["id"]]
    assert runs[0].status == "stopped" and runs[0].stopped_at is not None
    assert runs[1].status == "running" and runs[1].stopped_at is None


def test_an_errored_bot_can_be_started_again(
    client: FlaskClient, db: Any, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    act(client, owner, bot_id, "start")
    # What the tick path will do after repeated failures (not built yet): mark both as errored.
    db.execute(sa.update(BotRun).where(BotRun.bot_id == bot_id).values(status="error", error="x"))
    db.execute(sa.text("UPDATE bots SET status = 'error' WHERE id = :id"), {"id": bot_id})
    db.commit()
    for action in ("pause", "resume", "stop"):
        assert act(client, owner, bot_id, action).status_code == 409, action
    restarted = act(client, owner, bot_id, "start")
    assert restarted.status_code == 200, restarted.json
    assert restarted.json["status"] == "running" and restarted.json["run"]["error"] is None
    assert [r.status for r in runs_of(db, bot_id)] == ["error", "running"]


@pytest.mark.parametrize(
    ("setup", "action", "message"),
    [
        ((), "pause", "The bot is not running; start it first."),
        ((), "resume", "The bot is not paused; start it instead."),
        ((), "stop", "The bot has never been started."),
        (("start",), "start", "The bot is already running."),
        (("start",), "resume", "The bot is already running."),
        (("start", "pause"), "start", "The bot is paused; resume it or stop it."),
        (("start", "pause"), "pause", "The bot is already paused."),
        (("start", "stop"), "pause", "The bot is stopped; start it first."),
        (("start", "stop"), "resume", "The bot is stopped; start it instead."),
        (("start", "stop"), "stop", "The bot is already stopped."),
    ],
)
def test_invalid_transitions_are_409(
    client: FlaskClient,
    instruments: None,
    owner: dict[str, str],
    setup: tuple[str, ...],
    action: str,
    message: str,
) -> None:
    bot_id = new_bot(client, owner)
    for step in setup:
        assert act(client, owner, bot_id, step).status_code == 200, step
    before = client.get(f"{BOTS}/{bot_id}", headers=owner).json["status"]
    response = act(client, owner, bot_id, action)
    assert response.status_code == 409, response.json
    assert response.json["code"] == 409 and response.json["status"] == "Conflict"
    assert response.json["message"] == message
    assert "request_id" in response.json
    assert client.get(f"{BOTS}/{bot_id}", headers=owner).json["status"] == before


def test_another_users_bot_is_not_found(
    client: FlaskClient, instruments: None, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    for action in ("start", "pause", "resume", "stop"):
        response = act(client, stranger, bot_id, action)
        assert response.status_code == 404, action
        assert response.json["message"] == "No bot with that id."
    assert act(client, owner, bot_id, "start").status_code == 200
    assert act(client, stranger, bot_id, "stop").status_code == 404
    assert client.get(f"{BOTS}/{bot_id}", headers=owner).json["status"] == "running"
    assert client.post(f"{BOTS}/{bot_id}/start").status_code == 401
    missing = "00000000-0000-0000-0000-000000000000"
    assert act(client, owner, missing, "start").status_code == 404


@pytest.mark.parametrize(("roles", "limit"), [(("user",), 2), (("moderator", "user"), 3)])
def test_running_bots_are_limited_by_role(
    app: Flask,
    client: FlaskClient,
    instruments: None,
    make_user: Callable[..., Any],
    login: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    roles: tuple[str, ...],
    limit: int,
) -> None:
    settings = app.extensions["botyard.settings"]
    small = settings.replace(bot_limit_user=2, bot_limit_moderator=3, bot_limit_admin=4)
    monkeypatch.setitem(app.extensions, "botyard.settings", small)
    headers = bearer(login(make_user(roles=roles).username)["access_token"])
    bots = [new_bot(client, headers, name=f"bot {i}") for i in range(limit + 1)]
    for bot_id in bots[:limit]:
        assert act(client, headers, bot_id, "start").status_code == 200
    act(client, headers, bots[0], "pause")  # paused bots count too

    refused = act(client, headers, bots[limit], "start")
    assert refused.status_code == 429, refused.json
    assert refused.json["code"] == 429
    assert f"{limit} bot(s) running or paused" in refused.json["message"]
    assert client.get(f"{BOTS}/{bots[limit]}", headers=headers).json["status"] == "draft"

    assert act(client, headers, bots[0], "stop").status_code == 200  # frees a slot
    assert act(client, headers, bots[limit], "start").status_code == 200


def test_default_limits_come_from_settings(app: Flask) -> None:
    settings = app.extensions["botyard.settings"]
    assert (settings.bot_limit_user, settings.bot_limit_moderator, settings.bot_limit_admin) == (
        5,
        10,
        50,
    )


def test_only_one_active_run_per_bot_in_the_database(
    client: FlaskClient, db: Any, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    act(client, owner, bot_id, "start")
    run = runs_of(db, bot_id)[0]
    db.add(
        BotRun(
            bot_id=run.bot_id,
            owner_id=run.owner_id,
            status="paused",
            started_at=run.started_at,
            initial_capital=run.initial_capital,
            broker_state=run.broker_state,
        )
    )
    with pytest.raises(IntegrityError, match="uq_bot_runs_bot_id_active"):
        db.flush()
    db.rollback()


@pytest.mark.parametrize(
    "fields",
    [
        {"strategy": {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}},
        {"risk": {"stop_loss": 0.05}},
        {"symbol": "ETH-USD"},
        {"timeframe": "4h"},
        {"initial_capital": 50},
        {"fee": 0.0},
        {"slippage_bps": 1},
    ],
)
@pytest.mark.parametrize("state", [("start",), ("start", "pause")])
def test_a_live_bot_keeps_how_it_trades(
    client: FlaskClient,
    instruments: None,
    owner: dict[str, str],
    fields: dict[str, Any],
    state: tuple[str, ...],
) -> None:
    bot_id = new_bot(client, owner)
    for step in state:
        act(client, owner, bot_id, step)
    url = f"{BOTS}/{bot_id}"
    before = client.get(url, headers=owner).json
    refused = client.patch(url, json=fields, headers=owner)
    assert refused.status_code == 409, refused.json
    assert refused.json["message"].startswith("Stop the bot before changing how it trades")
    assert client.get(url, headers=owner).json == before

    renamed = client.patch(url, json={"name": "Renamed", "description": "live"}, headers=owner)
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["name"] == "Renamed" and renamed.json["description"] == "live"

    act(client, owner, bot_id, "stop")
    assert client.patch(url, json=fields, headers=owner).status_code == 200


def test_delete_a_live_bot_is_409_and_a_stopped_one_takes_its_runs(
    client: FlaskClient, db: Any, instruments: None, owner: dict[str, str]
) -> None:
    bot_id = new_bot(client, owner)
    act(client, owner, bot_id, "start")
    assert client.delete(f"{BOTS}/{bot_id}", headers=owner).status_code == 409
    act(client, owner, bot_id, "stop")
    assert client.delete(f"{BOTS}/{bot_id}", headers=owner).status_code == 204
    db.expire_all()
    assert runs_of(db, bot_id) == []
