"""Email deliveries through the real queue to a real loopback SMTP server: delivery,
idempotence, retries with backoff, final failure, the sweep, and the daily digest."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import select

from models.people import outbox
from models.people.notifications import notify
from models.people.tables import AccountSettings, NotificationDelivery
from tests.mailbox import Inbox, body, free_port, smtp_server
from workers import notify as notify_jobs
from workers.digest import send_digests
from workers.main import build_worker
from workers.outbox_relay import delivery_job_id
from workers.queues import NOTIFICATIONS

FRONTEND = "https://app.botyard.test"


def use_smtp(app: Flask, url: str) -> None:
    app.extensions["botyard.settings"] = app.extensions["botyard.settings"].replace(
        smtp_url=url, frontend_url=FRONTEND
    )


@pytest.fixture
def settings_restored(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    yield
    app.extensions["botyard.settings"] = original


@pytest.fixture
def inbox(app: Flask, settings_restored: None) -> Iterator[Inbox]:
    with smtp_server() as (handler, url):
        use_smtp(app, url)
        yield handler


def drain(app: Flask) -> None:
    """Run the notifications queue to empty, in-process, as a worker would."""
    build_worker(app, (NOTIFICATIONS,), simple=True).work(burst=True)


def email_delivery(db: Any, notification_id: int) -> NotificationDelivery:
    db.expire_all()
    return db.scalars(
        select(NotificationDelivery).where(
            NotificationDelivery.notification_id == notification_id,
            NotificationDelivery.channel == "email",
        )
    ).one()


def failed_note(db: Any, user: Any) -> int:
    note = notify(user.id, "backtest.failed", {"backtest_id": "b1", "symbol": "BTC-USD"})
    assert note is not None
    db.commit()  # the relay queues deliver-<id> now
    return note.id


def test_a_delivery_is_sent_once_however_often_it_runs(
    app: Flask,
    db: Any,
    redis: Redis,
    make_user: Callable[..., Any],
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    user = make_user("mailee")
    note_id = failed_note(db, user)
    delivery = email_delivery(db, note_id)
    job = Queue(NOTIFICATIONS, connection=redis).fetch_job(delivery_job_id(delivery.id))
    assert job is not None and job.func_name == "workers.notify.deliver_email"
    assert "mailee@" not in (job.description or "")

    drain(app)
    assert [m["Subject"] for m in inbox.messages] == ["Backtest failed: inline strategy on BTC-USD"]
    assert inbox.messages[0]["To"] == "mailee@example.com"
    delivery = email_delivery(db, note_id)
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert delivery.finished_at is not None and delivery.last_error is None

    # Again, directly and through the queue: nothing more is sent.
    assert notify_jobs.deliver_email(str(delivery.id)) == "sent"
    outbox.staged(db()).deliveries.append((delivery.id, "email"))
    db.commit()
    drain(app)
    assert len(inbox.messages) == 1
    assert email_delivery(db, note_id).attempts == 1

    # Ours, that is: the test SMTP server (logger "mail.log") logs the recipient itself.
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")]
    logged = "\n".join(ours) + "".join(capfd.readouterr())
    assert "email_delivered" in logged and "mailee@" not in logged


def test_an_erased_or_disabled_account_is_skipped(
    app: Flask, db: Any, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    gone, disabled, leaving = make_user(), make_user(), make_user()
    notes = {u: failed_note(db, u) for u in (gone, disabled, leaving)}
    gone.erased_at = datetime.now().astimezone()
    disabled.is_active = False
    leaving.is_active = False  # waiting out the deletion grace period: still told
    leaving.deletion_requested_at = datetime.now().astimezone()
    db.commit()
    drain(app)
    assert email_delivery(db, notes[gone]).status == "skipped"
    assert email_delivery(db, notes[disabled]).status == "skipped"
    assert email_delivery(db, notes[leaving]).status == "sent"
    assert [m["To"] for m in inbox.messages] == [leaving.email]


def test_a_failed_send_is_retried_with_backoff_then_ends_failed(
    app: Flask,
    db: Any,
    redis: Redis,
    make_user: Callable[..., Any],
    settings_restored: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    use_smtp(app, f"smtp://127.0.0.1:{free_port()}")  # nothing listens: connection refused
    user = make_user("unlucky")
    note_id = failed_note(db, user)
    delivery_id = email_delivery(db, note_id).id
    queue = Queue(NOTIFICATIONS, connection=redis)
    scheduled = queue.scheduled_job_registry
    job_id = delivery_job_id(delivery_id)

    before = datetime.now().astimezone()
    drain(app)
    after = datetime.now().astimezone()
    job = Job.fetch(job_id, connection=redis)
    assert job.get_status() == JobStatus.SCHEDULED and job.retries_left == 5
    # RQ's backoff: the first retry is 10 s after the failure (the registry keeps whole seconds).
    at = scheduled.get_scheduled_time(job_id)
    assert before.replace(microsecond=0) + timedelta(seconds=10) <= at
    assert at <= after + timedelta(seconds=10)
    delivery = email_delivery(db, note_id)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error and "ConnectionRefusedError" in delivery.last_error
    # The sweep leaves a delivery whose retry is scheduled to that retry.
    assert notify_jobs.sweep_deliveries(now=delivery.created_at + timedelta(hours=1)) == 0
    assert job_id not in queue.job_ids

    # Each retry falls due (the registry hands it back as its time would), and fails again.
    for _ in range(6):
        scheduled.requeue(job_id)
        drain(app)
    job = Job.fetch(job_id, connection=redis)
    assert job.get_status() == JobStatus.FAILED and job_id in queue.failed_job_registry
    delivery = email_delivery(db, note_id)
    assert (delivery.status, delivery.attempts) == ("failed", 7)
    assert delivery.finished_at is not None
    assert "unlucky@" not in (delivery.last_error or "") and "unlucky@" not in "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("mail.log")
    )


def test_a_retry_delivers_once_the_server_is_back(
    app: Flask, db: Any, redis: Redis, make_user: Callable[..., Any], settings_restored: None
) -> None:
    use_smtp(app, f"smtp://127.0.0.1:{free_port()}")
    note_id = failed_note(db, make_user())
    delivery_id = email_delivery(db, note_id).id
    drain(app)
    assert email_delivery(db, note_id).status == "pending"
    with smtp_server() as (inbox, url):
        use_smtp(app, url)
        Queue(NOTIFICATIONS, connection=redis).scheduled_job_registry.requeue(
            delivery_job_id(delivery_id)
        )
        drain(app)
        assert len(inbox.messages) == 1
    delivery = email_delivery(db, note_id)
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_the_sweep_delivers_what_the_relay_never_queued(
    app: Flask, db: Any, redis: Redis, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    user = make_user()
    previous = outbox.set_relay(None)  # as if Redis were away at commit time
    try:
        note_id = failed_note(db, user)
    finally:
        outbox.set_relay(previous)
    delivery = email_delivery(db, note_id)
    queue = Queue(NOTIFICATIONS, connection=redis)
    assert queue.count == 0

    grace = app.extensions["botyard.settings"].delivery_sweep_grace_s
    too_soon = delivery.created_at + timedelta(seconds=grace - 1)
    due = delivery.created_at + timedelta(seconds=grace + 1)
    assert notify_jobs.sweep_deliveries(now=too_soon) == 0
    assert notify_jobs.sweep_deliveries(now=due) == 1
    assert notify_jobs.sweep_deliveries(now=due) == 0  # queued already: never doubled
    assert queue.job_ids == [delivery_job_id(delivery.id)]

    drain(app)
    assert [m["To"] for m in inbox.messages] == [user.email]
    assert email_delivery(db, note_id).status == "sent"
    assert notify_jobs.sweep_deliveries(now=due + timedelta(minutes=5)) == 0


def _digest_user(db: Any, make_user: Callable[..., Any], daily: bool = True) -> Any:
    user = make_user()
    batched = {"in_app": True, "email": False, "webhook": False, "digest": True}
    document = {
        "email_digest": "daily" if daily else "off",
        "notifications": {"bot.started": batched, "bot.stopped": batched},
    }
    db.add(AccountSettings(user_id=user.id, document=document))
    db.commit()
    return user


def test_the_daily_digest_sends_one_email_per_user_and_day(
    app: Flask, db: Any, redis: Redis, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    user = _digest_user(db, make_user)
    first = notify(user.id, "bot.started", {"bot_id": "k1", "bot_name": "<b>sma</b>"})
    second = notify(user.id, "bot.stopped", {"bot_id": "k1", "bot_name": "sma"})
    assert first is not None and second is not None
    db.commit()
    assert Queue(NOTIFICATIONS, connection=redis).count == 0  # digest items are not queued
    created = email_delivery(db, first.id).created_at
    assert email_delivery(db, second.id).status == "digest"

    hour = app.extensions["botyard.settings"].digest_hour_utc
    next_digest = created.replace(hour=hour, minute=0, second=0, microsecond=0)
    if next_digest <= created:
        next_digest += timedelta(days=1)
    # Before the digest hour these belong to the next digest: nothing goes out.
    assert send_digests(now=next_digest - timedelta(minutes=1))["sent"] == 0
    assert send_digests(now=next_digest + timedelta(minutes=5))["sent"] == 1
    assert send_digests(now=next_digest + timedelta(minutes=15))["sent"] == 0

    (message,) = inbox.messages
    assert message["To"] == user.email
    assert message["Subject"] == "Your Botyard daily digest: 2 notifications"
    text, html = body(message), body(message, "html")
    assert "<b>sma</b> started trading" in text and "sma stopped" in text
    assert "&lt;b&gt;sma&lt;/b&gt; started trading" in html
    assert {email_delivery(db, n.id).status for n in (first, second)} == {"sent"}

    # What arrives after the cutoff waits for the next day's digest.
    later = notify(user.id, "bot.started", {"bot_id": "k1", "bot_name": "sma"})
    assert later is not None
    db.commit()
    # (The test's outer transaction freezes now(): date the row as if made after the cutoff.)
    email_delivery(db, later.id).created_at = next_digest + timedelta(minutes=20)
    db.commit()
    day_after = next_digest + timedelta(days=1, minutes=5)
    assert send_digests(now=next_digest + timedelta(minutes=30))["sent"] == 0
    assert send_digests(now=day_after)["sent"] == 1
    assert len(inbox.messages) == 2


def test_digest_items_of_a_user_who_turned_it_off_are_dropped(
    app: Flask, db: Any, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    user = _digest_user(db, make_user)
    note = notify(user.id, "bot.started", {"bot_id": "k1"})
    assert note is not None
    db.commit()
    settings_row = db.get(AccountSettings, user.id)
    settings_row.document = {**settings_row.document, "email_digest": "off"}
    db.commit()
    created = email_delivery(db, note.id).created_at
    assert send_digests(now=created + timedelta(days=1, hours=1))["skipped"] == 1
    assert email_delivery(db, note.id).status == "skipped"
    assert inbox.messages == []
