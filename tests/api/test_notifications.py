"""In-app notifications over the API, the backtest notification end to end (queue ->
worker -> SMTP), and the "new login" notice."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from models.identity.tables import AuthSession
from models.people.notifications import notify
from models.people.tables import AccountSettings, Notification, NotificationDelivery
from tests.helpers import bearer, load_btc_history
from tests.mailbox import Inbox, body, smtp_server
from workers import notify as notify_jobs
from workers.main import build_worker
from workers.queues import BACKTESTS, NOTIFICATIONS

BASE = "/api/v1/me/notifications"
FRONTEND = "https://app.botyard.test"
DAY = 86_400_000
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
START = END - 20 * DAY
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    original = app.extensions["botyard.settings"]
    with smtp_server() as (handler, url):
        app.extensions["botyard.settings"] = original.replace(smtp_url=url, frontend_url=FRONTEND)
        yield handler
    app.extensions["botyard.settings"] = original


def drain(app: Flask, queue: str) -> None:
    assert build_worker(app, (queue,), simple=True).work(burst=True) is True


def user_of(client: FlaskClient, headers: dict[str, str]) -> Any:
    return client.get("/api/v1/me", headers=headers).json["id"]


def test_a_finished_backtest_is_notified_in_app_and_by_email(
    app: Flask, client: FlaskClient, db: Any, owner: dict[str, str], inbox: Inbox
) -> None:
    load_btc_history(START, END)
    db.commit()
    bot = {"name": "sma <fast>", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    bot_id = client.post("/api/v1/bots", json=bot, headers=owner).json["id"]
    body_in = {"bot_id": bot_id, "start": START, "end": END}
    backtest = client.post("/api/v1/backtests", json=body_in, headers=owner).json
    drain(app, BACKTESTS)

    page = client.get(BASE, headers=owner).json
    (note,) = page["rows"]
    assert page["next_cursor"] is None
    assert note["event"] == "backtest.finished" and note["read_at"] is None
    assert note["data"]["backtest_id"] == backtest["id"]
    assert note["data"]["symbol"] == "BTC-USD" and note["data"]["bot_name"] == "sma <fast>"
    done = client.get(f"/api/v1/backtests/{backtest['id']}", headers=owner).json
    assert note["data"]["total_return"] == done["metrics"]["total_return"]
    assert client.get(f"{BASE}/unread-count", headers=owner).json == {"unread": 1}

    drain(app, NOTIFICATIONS)
    (message,) = inbox.messages
    assert message["Subject"] == "Backtest finished: sma <fast> on BTC-USD"
    assert "Total return:" in body(message)
    assert f"{FRONTEND}/backtests/{backtest['id']}" in body(message)
    assert "sma &lt;fast&gt;" in body(message, "html")

    # The delivery job again, as a second delivery of the same RQ job would: no second email.
    delivery = db.scalars(
        select(NotificationDelivery).where(NotificationDelivery.notification_id == note["id"])
    ).one()
    assert notify_jobs.deliver_email(str(delivery.id)) == "sent"
    assert len(inbox.messages) == 1


def test_a_failed_backtest_is_notified_with_its_reason(
    app: Flask, client: FlaskClient, db: Any, owner: dict[str, str]
) -> None:
    load_btc_history(START, END)
    db.commit()
    spec = {"symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    body_in = {**spec, "start": START - 40 * DAY, "end": START - 30 * DAY}  # no candles
    assert client.post("/api/v1/backtests", json=body_in, headers=owner).status_code == 202
    drain(app, BACKTESTS)
    (note,) = client.get(BASE, headers=owner).json["rows"]
    assert note["event"] == "backtest.failed"
    assert note["data"]["error"] == "No 1h candles for BTC-USD in that range."


def _notes(db: Any, user_id: Any, count: int) -> list[int]:
    ids = []
    for i in range(count):
        note = notify(user_id, "bot.started", {"bot_id": f"k{i}", "bot_name": f"bot {i}"})
        assert note is not None
        ids.append(note.id)
    db.commit()
    return ids


def test_list_filter_and_page_by_cursor(
    client: FlaskClient, db: Any, owner: dict[str, str]
) -> None:
    user_id = user_of(client, owner)
    ids = _notes(db, user_id, 5)
    first = client.get(f"{BASE}?limit=2", headers=owner).json
    assert [r["id"] for r in first["rows"]] == [ids[4], ids[3]]
    second = client.get(f"{BASE}?limit=2&cursor={first['next_cursor']}", headers=owner).json
    third = client.get(f"{BASE}?limit=2&cursor={second['next_cursor']}", headers=owner).json
    assert [r["id"] for r in second["rows"] + third["rows"]] == [ids[2], ids[1], ids[0]]
    assert third["next_cursor"] is None

    assert client.post(f"{BASE}/{ids[1]}/read", headers=owner).status_code == 200
    unread = client.get(f"{BASE}?unread=true", headers=owner).json["rows"]
    read = client.get(f"{BASE}?unread=false", headers=owner).json["rows"]
    assert [r["id"] for r in unread] == [ids[4], ids[3], ids[2], ids[0]]
    assert [r["id"] for r in read] == [ids[1]] and read[0]["read_at"] is not None


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "cursor=0", "cursor=99999999999999999999", "unread=maybe", "x=1"],
)
def test_bad_queries_are_422(client: FlaskClient, owner: dict[str, str], query: str) -> None:
    response = client.get(f"{BASE}?{query}", headers=owner)
    assert response.status_code == 422, response.json


def test_only_in_app_notifications_are_listed(
    client: FlaskClient, db: Any, owner: dict[str, str]
) -> None:
    user_id = user_of(client, owner)
    mail_only = {"in_app": False, "email": True, "webhook": False, "digest": False}
    db.add(AccountSettings(user_id=user_id, document={"notifications": {"bot.error": mail_only}}))
    db.commit()
    hidden = notify(user_id, "bot.error", {"bot_id": "k"})
    assert hidden is not None and hidden.in_app is False
    db.commit()
    assert client.get(BASE, headers=owner).json["rows"] == []
    assert client.get(f"{BASE}/unread-count", headers=owner).json == {"unread": 0}
    assert client.post(f"{BASE}/{hidden.id}/read", headers=owner).status_code == 404


def test_mark_read_is_idempotent_and_another_users_is_404(
    client: FlaskClient, db: Any, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    (note_id,) = _notes(db, user_of(client, owner), 1)
    assert client.post(f"{BASE}/{note_id}/read", headers=stranger).status_code == 404
    assert client.post(f"{BASE}/999999999/read", headers=owner).status_code == 404
    first = client.post(f"{BASE}/{note_id}/read", headers=owner)
    again = client.post(f"{BASE}/{note_id}/read", headers=owner)
    assert first.status_code == again.status_code == 200
    assert first.json["read_at"] == again.json["read_at"] is not None
    assert client.get(BASE, headers=stranger).json["rows"] == []
    assert client.get(f"{BASE}/unread-count", headers=owner).json == {"unread": 0}


def test_read_all_says_how_many_and_touches_only_mine(
    client: FlaskClient, db: Any, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    _notes(db, user_of(client, owner), 3)
    _notes(db, user_of(client, stranger), 2)
    assert client.post(f"{BASE}/read-all", headers=owner).json == {"marked": 3}
    assert client.post(f"{BASE}/read-all", headers=owner).json == {"marked": 0}
    assert client.get(f"{BASE}/unread-count", headers=stranger).json == {"unread": 2}


def test_the_endpoints_need_a_login(client: FlaskClient) -> None:
    assert client.get(BASE).status_code == 401
    assert client.get(f"{BASE}/unread-count").status_code == 401
    assert client.post(f"{BASE}/1/read").status_code == 401
    assert client.post(f"{BASE}/read-all").status_code == 401


def _new_logins(db: Any, user_id: Any) -> list[Notification]:
    db.expire_all()
    query = select(Notification).where(
        Notification.user_id == user_id, Notification.event == "account.new_login"
    )
    return list(db.scalars(query))


def test_a_login_from_a_new_device_and_address_is_notified(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    user = make_user("traveller")
    home = {"environ_base": {"REMOTE_ADDR": "192.0.2.10"}, "headers": {"User-Agent": "Home/1"}}
    login("traveller", **home)  # the very first login: nothing to compare with
    login("traveller", **home)
    assert _new_logins(db, user.id) == []

    # A new address with a known device, or a known address with a new device: known.
    login("traveller", environ_base={"REMOTE_ADDR": "198.51.100.7"}, headers=home["headers"])
    login("traveller", environ_base=home["environ_base"], headers={"User-Agent": "Phone/2"})
    assert _new_logins(db, user.id) == []

    away = {"environ_base": {"REMOTE_ADDR": "203.0.113.5"}, "headers": {"User-Agent": "Cafe/3"}}
    tokens = login("traveller", **away)
    (note,) = _new_logins(db, user.id)
    assert note.data["ip"] == "203.0.113.5" and note.data["user_agent"] == "Cafe/3"
    assert note.in_app
    channels = db.scalars(
        select(NotificationDelivery.channel).where(NotificationDelivery.notification_id == note.id)
    ).all()
    assert channels == ["email"]  # a security event: always mailed
    listed = client.get(BASE, headers=bearer(tokens["access_token"])).json["rows"]
    assert [r["event"] for r in listed] == ["account.new_login"]

    login("traveller", **away)  # now it is known
    assert len(_new_logins(db, user.id)) == 1


def test_sessions_older_than_the_lookback_do_not_count(
    app: Flask, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    user = make_user("returning")
    home = {"environ_base": {"REMOTE_ADDR": "192.0.2.20"}, "headers": {"User-Agent": "Home/1"}}
    login("returning", **home)
    days = app.extensions["botyard.settings"].new_login_lookback_days
    db.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id)
        .values(created_at=AuthSession.created_at - timedelta(days=days + 1))
    )
    db.commit()
    login("returning", **home)
    assert len(_new_logins(db, user.id)) == 1
