"""notify(): rows in the caller's transaction, side effects only after it commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from models.people import outbox
from models.people.notifications import notify
from models.people.tables import AccountSettings, Notification, NotificationDelivery, Webhook


@pytest.fixture
def relayed() -> Iterator[list[outbox.Staged]]:
    seen: list[outbox.Staged] = []
    previous = outbox.set_relay(seen.append)
    yield seen
    outbox.set_relay(previous)


def test_notify_stores_the_notification_and_its_deliveries(
    db: Any, make_user: Callable[..., Any], relayed: list[outbox.Staged]
) -> None:
    user = make_user()
    hook = Webhook(user_id=user.id, url="https://hooks.example.com/x", events=["backtest.failed"])
    hook.secret = "s" * 32
    db.add(hook)
    db.commit()

    note = notify(user.id, "backtest.failed", {"backtest_id": "b1"})
    assert note is not None
    assert relayed == []  # nothing leaves before the commit
    db.commit()

    deliveries = db.scalars(
        select(NotificationDelivery).where(NotificationDelivery.notification_id == note.id)
    ).all()
    assert sorted((d.channel, d.target, d.status) for d in deliveries) == [
        ("email", "email", "pending"),
        ("webhook", str(hook.id), "pending"),
    ]
    assert len(relayed) == 1
    assert sorted(relayed[0].deliveries) == sorted((d.id, d.channel) for d in deliveries)
    assert [(kind, data["event"]) for _, kind, data in relayed[0].events] == [
        ("notification", "backtest.failed")
    ]


def test_a_rolled_back_notification_relays_nothing(
    db: Any, make_user: Callable[..., Any], relayed: list[outbox.Staged]
) -> None:
    user = make_user()
    notify(user.id, "bot.error", {"bot_id": "x"})
    db.rollback()
    db.commit()
    assert relayed == []
    assert db.scalars(select(Notification).where(Notification.user_id == user.id)).all() == []


def test_settings_silence_an_event_and_security_events_always_email(
    db: Any, make_user: Callable[..., Any]
) -> None:
    user = make_user()
    off = {"in_app": False, "email": False, "webhook": False, "digest": False}
    db.add(
        AccountSettings(
            user_id=user.id,
            document={"notifications": {"bot.started": off, "account.new_login": off}},
        )
    )
    db.commit()
    assert notify(user.id, "bot.started", {}) is None
    login_note = notify(user.id, "account.new_login", {"ip": "192.0.2.1"})
    assert login_note is not None and login_note.in_app is False
    channels = db.scalars(
        select(NotificationDelivery.channel).where(
            NotificationDelivery.notification_id == login_note.id
        )
    ).all()
    assert channels == ["email"]


def test_bot_trades_are_silent_by_default(db: Any, make_user: Callable[..., Any]) -> None:
    user = make_user()
    assert notify(user.id, "bot.trade", {"side": "buy"}) is None
