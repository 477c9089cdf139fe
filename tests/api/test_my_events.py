"""GET /api/v1/me/events: my notifications and bot events, live and resumable, mine only.

Everything goes the real way: notify() and the bot code stage events in their
transaction, the outbox relay XADDs them to Redis after the commit, the web
process's hub reads them and the SSE response carries them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, decode_token
from redis import Redis

from api.people.events import parse_event_id
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, current_run, start_bot
from models.market.instruments import sync_instruments
from models.people.notifications import notify
from models.people.outbox import events_key
from models.people.tables import AccountSettings, Notification
from tests.api.test_market_stream import Events
from tests.helpers import bearer, load_btc_history
from workers.bot_schedules import apply_schedules_at
from workers.ticks import tick_bots

EVENTS = "/api/v1/me/events"
BOTS = "/api/v1/bots"
HOUR = 3_600_000
DAY = 24 * HOUR
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_START = END - 12 * DAY
STARTED_AT = datetime.fromtimestamp((SPAN_START + HOUR // 2) / 1000, UTC)
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}
BOT = {
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 0.0,
    "strategy": SMA,
}
DEADLINE_S = 60.0


class MyEvents(Events):
    """An events stream read from the test client; heartbeats are skipped."""

    def event(self) -> dict[str, Any]:
        """The next event, with its data parsed; fails after a generous deadline."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            fields = self.next()
            if "comment" not in fields:
                return {**fields, "data": json.loads(fields["data"])}
        raise AssertionError("no event arrived")

    def events(self, count: int) -> list[dict[str, Any]]:
        return [self.event() for _ in range(count)]


def open_my_events(client: FlaskClient, headers: dict[str, str], **extra: str) -> MyEvents:
    response = client.get(EVENTS, headers={**headers, **extra}, buffered=False)
    assert response.status_code == 200, response.get_data()
    assert response.mimetype == "text/event-stream"
    events = MyEvents(response)
    assert events.next() == {"retry": "2000"}
    return events


@pytest.fixture
def me(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> Any:
    """A user with ``.headers`` for the API."""
    user = make_user()
    user.headers = bearer(login(user.username)["access_token"])
    return user


@pytest.fixture
def other(db: Any, make_user: Callable[..., Any], login: Callable[..., Any]) -> Any:
    user = make_user()
    user.headers = bearer(login(user.username)["access_token"])
    return user


def told(db: Any, user_id: uuid.UUID, event: str, **data: Any) -> Notification:
    note = notify(user_id, event, data)
    assert note is not None
    db.commit()
    return note


def test_a_committed_notification_arrives_on_my_stream(
    db: Any, client: FlaskClient, me: Any
) -> None:
    events = open_my_events(client, me.headers)
    try:
        note = told(db, me.id, "backtest.finished", backtest_id="b1")
        got = events.event()
    finally:
        events.close()
    assert got["event"] == "notification"
    assert parse_event_id(got["id"]) == got["id"]  # the Redis entry's own id
    assert got["data"]["id"] == note.id and got["data"]["event"] == "backtest.finished"
    assert got["data"]["data"] == {"backtest_id": "b1"} and got["data"]["read_at"] is None


def test_nothing_is_published_for_a_rolled_back_change(
    db: Any, client: FlaskClient, me: Any, redis: Redis
) -> None:
    notify(me.id, "backtest.finished", {"backtest_id": "gone"})
    db.rollback()
    told(db, me.id, "backtest.failed", backtest_id="kept")
    entries = redis.xrange(events_key(me.id))
    assert [json.loads(f[b"data"])["event"] for _, f in entries] == ["backtest.failed"]


def test_bot_lifecycle_through_the_api_arrives_as_bot_status_and_notifications(
    db: Any, client: FlaskClient, instruments: None, me: Any
) -> None:
    body = {"name": "Trend", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    bot_id = client.post(BOTS, json=body, headers=me.headers).json["id"]
    events = open_my_events(client, me.headers)
    try:
        for action in ("start", "pause", "resume", "stop"):
            response = client.post(f"{BOTS}/{bot_id}/{action}", headers=me.headers)
            assert response.status_code == 200, response.json
        got = events.events(6)
    finally:
        events.close()
    kinds = [(e["event"], e["data"].get("action") or e["data"].get("event")) for e in got]
    assert kinds == [
        ("bot.status", "started"),
        ("notification", "bot.started"),
        ("bot.status", "paused"),  # paused by its owner: no notification
        ("bot.status", "resumed"),
        ("bot.status", "stopped"),
        ("notification", "bot.stopped"),
    ]
    first = got[0]["data"]
    assert first["bot_id"] == bot_id and first["bot_name"] == "Trend"
    assert first["status"] == "running" and first["by"] == "owner" and first["run_id"]
    assert got[-2]["data"]["status"] == "stopped"
    ids = [e["id"] for e in got]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 6


def test_resuming_with_last_event_id_replays_exactly_what_was_missed(
    db: Any, client: FlaskClient, me: Any
) -> None:
    events = open_my_events(client, me.headers)
    try:
        told(db, me.id, "backtest.finished", n=1)
        seen = events.event()
    finally:
        events.close()
    for n in (2, 3, 4):  # while the client is away
        told(db, me.id, "backtest.finished", n=n)
    resumed = open_my_events(client, me.headers, **{"Last-Event-ID": seen["id"]})
    try:
        replayed = resumed.events(3)
        told(db, me.id, "backtest.finished", n=5)
        live = resumed.event()
    finally:
        resumed.close()
    got = [*replayed, live]
    assert [e["data"]["data"]["n"] for e in got] == [2, 3, 4, 5]  # nothing lost or doubled
    assert len({e["id"] for e in [seen, *got]}) == 5

    # 0-0 replays everything kept; an id beyond the newest starts from now.
    everything = open_my_events(client, me.headers, **{"Last-Event-ID": "0-0"})
    try:
        assert [e["data"]["data"]["n"] for e in everything.events(5)] == [1, 2, 3, 4, 5]
    finally:
        everything.close()
    ahead = open_my_events(client, me.headers, **{"Last-Event-ID": "99999999999999-0"})
    try:
        told(db, me.id, "backtest.finished", n=6)
        assert ahead.event()["data"]["data"]["n"] == 6
    finally:
        ahead.close()


@pytest.mark.parametrize("header", ["garbage", "12-x", "-1-0", "1-2-3", "1²-0", "9" * 60 + "-0"])
def test_a_malformed_last_event_id_is_refused(client: FlaskClient, me: Any, header: str) -> None:
    response = client.get(EVENTS, headers={**me.headers, "Last-Event-ID": header})
    assert response.status_code == 422
    assert "Last-Event-ID" in response.json["message"]
    assert response.json["errors"] == {"headers": {"Last-Event-ID": [response.json["message"]]}}


def test_another_user_never_receives_my_events(
    db: Any, client: FlaskClient, me: Any, other: Any, redis: Redis
) -> None:
    # A query naming someone else changes nothing: the user comes from the token.
    response = client.get(f"{EVENTS}?user_id={me.id}", headers=other.headers, buffered=False)
    assert response.status_code == 200
    theirs = MyEvents(response)
    try:
        assert theirs.next() == {"retry": "2000"}
        told(db, me.id, "backtest.finished", whose="mine")
        assert len(redis.xrange(events_key(me.id))) == 1  # published before theirs below
        told(db, other.id, "backtest.finished", whose="theirs")
        assert theirs.event()["data"]["data"] == {"whose": "theirs"}
    finally:
        theirs.close()
    # Nor by resuming from the start.
    replay = open_my_events(client, other.headers, **{"Last-Event-ID": "0-0"})
    try:
        assert replay.event()["data"]["data"] == {"whose": "theirs"}
    finally:
        replay.close()
    assert client.get(EVENTS).status_code == 401


def test_my_streams_share_the_per_user_limit_with_the_market_stream(
    app: Flask, client: FlaskClient, instruments: None, me: Any
) -> None:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(sse_max_streams_per_user=2)
    try:
        events = open_my_events(client, me.headers)
        market = client.get("/api/v1/market/stream?symbols=BTC-USD", headers=me.headers)
        assert market.status_code == 200
        refused = client.get(EVENTS, headers=me.headers)
        assert refused.status_code == 429
        assert "At most 2 open streams per caller" in refused.json["message"]
        market.close()
        open_my_events(client, me.headers).close()  # the market stream's slot came back
        events.close()
    finally:
        app.extensions["botyard.settings"] = original


# --- the tick job ---------------------------------------------------------------------------


@pytest.fixture
def trading(db: Any, make_user: Callable[..., Any]) -> tuple[Any, list[BotRun]]:
    """An owner with two running SMA bots started at ``STARTED_AT``, with history to trade."""
    load_btc_history(SPAN_START - 3 * DAY, END)
    owner = make_user()
    runs = []
    for name in ("one", "two"):
        bot = create_bot(owner.id, {"name": name, **BOT})
        start_bot(owner.id, bot.id, limit=10, now=STARTED_AT)
        run = current_run(bot)
        assert run is not None
        runs.append(run)
    db.commit()
    return owner, runs


def stream_of(redis: Redis, user_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f[b"kind"].decode(), json.loads(f[b"data"])) for _, f in redis.xrange(events_key(user_id))
    ]


class Statements:
    """The SQL statements this test's connection runs while it is listening."""

    def __init__(self, db: Any) -> None:
        self.engine = db.get_bind().engine
        self.seen: list[str] = []

    def record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self.record)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self.record)

    def reading(self, table: str) -> int:
        return sum(f"FROM {table}" in statement for statement in self.seen)


def test_a_tick_that_trades_publishes_bot_trade_with_one_settings_lookup_per_owner(
    db: Any, redis: Redis, trading: tuple[Any, list[BotRun]]
) -> None:
    owner, runs = trading
    ids = [str(run.id) for run in runs]
    with Statements(db) as quiet:  # the first candles: warm-up, nothing trades
        assert tick_bots(ids, SPAN_START + 3 * HOUR)["ticked"] == ids
    assert quiet.reading("account_settings") == 0 and stream_of(redis, owner.id) == []

    with Statements(db) as busy:  # a catch-up over the whole span trades on both bots
        assert tick_bots(ids, END - HOUR, fresh_bars=10**6)["ticked"] == ids
    assert busy.reading("account_settings") == 1  # one owner, one lookup, however many runs
    published = stream_of(redis, owner.id)
    assert [kind for kind, _ in published] == ["bot.trade", "bot.trade"]  # off by default
    assert db.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0
    by_run = {data["run_id"]: data for _, data in published}
    assert set(by_run) == {str(run.id) for run in runs}
    for run in runs:
        data = by_run[str(run.id)]
        stored = db.scalar(
            sa.select(sa.func.count())
            .where(sa.text("run_id = :r"))
            .select_from(sa.table("bot_trades")),
            {"r": run.id},
        )
        assert data["count"] == stored > 0
        assert data["candle_ts"] == END - HOUR and data["bot_name"] in ("one", "two")
        last = data["trades"][-1]
        assert last["client_order_id"].startswith(f"{run.id}:") and "pnl" in last
        assert len(data["trades"]) == min(stored, 20)


def test_bot_trade_notifications_once_the_owner_turns_them_on(
    db: Any, redis: Redis, trading: tuple[Any, list[BotRun]]
) -> None:
    owner, runs = trading
    document = {"notifications": {"bot.trade": {"in_app": True}}}
    db.add(AccountSettings(user_id=owner.id, document=document))
    db.commit()
    ids = [str(run.id) for run in runs]
    assert tick_bots(ids, END - HOUR, fresh_bars=10**6)["ticked"] == ids
    (note,) = db.scalars(sa.select(Notification).where(Notification.user_id == owner.id))
    assert note.event == "bot.trade" and note.in_app
    assert {b["run_id"] for b in note.data["bots"]} == set(ids)
    assert note.data["count"] == sum(b["count"] for b in note.data["bots"])
    kinds = [kind for kind, _ in stream_of(redis, owner.id)]
    assert kinds == ["bot.trade", "bot.trade", "notification"]


def test_a_run_moved_to_error_publishes_its_failures_and_a_bot_error_notification(
    app: Flask, db: Any, redis: Redis, trading: tuple[Any, list[BotRun]]
) -> None:
    owner, (good, bad) = trading
    limit = app.extensions["botyard.settings"].bot_max_failures
    db.execute(sa.update(BotRun).where(BotRun.id == bad.id).values(broker_state={"bogus": 1}))
    db.commit()
    for n in range(1, limit + 1):
        assert tick_bots([str(good.id), str(bad.id)], SPAN_START + (2 + n) * HOUR)["failed"] == [
            str(bad.id)
        ]
    published = stream_of(redis, owner.id)
    kinds = [kind for kind, _ in published]
    assert kinds == ["bot.failure"] * limit + ["bot.status", "notification"]
    failure = published[0][1]
    assert failure["run_id"] == str(bad.id) and "TypeError" in failure["error"]
    status = published[-2][1]
    assert status["status"] == "error" and status["action"] == "errored"
    assert status["by"] == "system" and status["run_id"] == str(bad.id)
    (note,) = db.scalars(sa.select(Notification).where(Notification.user_id == owner.id))
    assert note.event == "bot.error" and "TypeError" in note.data["error"]
    assert note.data["bot_id"] == str(bad.bot_id)
    assert db.get(Bot, bad.bot_id).status == "error"


# --- the schedule job -------------------------------------------------------------------------


def test_the_schedule_announces_its_start_pause_and_stop(
    db: Any, redis: Redis, make_user: Callable[..., Any]
) -> None:
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    owner = make_user()
    monday = datetime(2026, 1, 5, 8, tzinfo=UTC)  # 08:00, before the 09:00-17:00 window
    plan = {
        "start_at": monday.isoformat(),
        "stop_at": (monday + timedelta(days=1)).isoformat(),
        "windows": [{"days": ["mon"], "start": "09:00", "end": "17:00"}],
    }
    bot = create_bot(owner.id, {"name": "office", **BOT, "schedule": plan})
    db.commit()
    assert apply_schedules_at(monday)["started"] == 1  # started, then paused outside its window
    assert apply_schedules_at(monday + timedelta(hours=2))["resumed"] == 1
    assert apply_schedules_at(monday + timedelta(days=1))["stopped"] == 1
    published = stream_of(redis, owner.id)
    status = [(d["action"], d["by"]) for kind, d in published if kind == "bot.status"]
    assert status == [
        ("started", "schedule"),
        ("paused", "schedule"),
        ("resumed", "schedule"),
        ("stopped", "schedule"),
    ]
    assert all(d["bot_id"] == str(bot.id) for kind, d in published if kind == "bot.status")
    mine = sa.select(Notification.event).where(Notification.user_id == owner.id)
    notes = db.scalars(mine.order_by(Notification.id)).all()
    assert notes == ["bot.started", "bot.paused", "bot.stopped"]  # a resume tells nobody


def test_a_stream_ends_once_its_token_expires(app: Flask, client: FlaskClient, me: Any) -> None:
    token = me.headers["Authorization"].split()[1]
    with app.app_context():
        claims = decode_token(token)
        short = create_access_token(
            identity=claims["sub"],
            additional_claims={"sid": claims["sid"], "roles": claims["roles"]},
            expires_delta=timedelta(seconds=2),
        )
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(sse_heartbeat_s=0.05)
    try:
        events = open_my_events(client, bearer(short))
        deadline = time.monotonic() + DEADLINE_S
        ended = False
        while not ended and time.monotonic() < deadline:
            try:
                assert events.next() == {"comment": "heartbeat"}
            except StopIteration:
                ended = True
        events.close()
    finally:
        app.extensions["botyard.settings"] = original
    assert ended, "the stream outlived its token"
    assert client.get(EVENTS, headers=bearer(short)).status_code == 401  # reconnect: new token
