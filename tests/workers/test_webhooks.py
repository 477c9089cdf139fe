"""Webhook deliveries on the real queue to real loopback receivers: signatures, retries with
backoff (RQ's own retry path on a controlled clock), auto-disable, and the SSRF guard at
delivery time (DNS rebinding, pinned connections, redirects)."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import select

from models.people.notifications import notify
from models.people.tables import (
    AccountSettings,
    Notification,
    NotificationDelivery,
    Webhook,
    WebhookAttempt,
)
from models.people.webhooks import create_webhook
from tests.helpers import bearer
from tests.webhook_sink import FakeDns, Sink, drain_notifications, verify
from workers.outbox_relay import WEBHOOK_RETRY, delivery_job_id
from workers.queues import NOTIFICATIONS, get_queue
from workers.webhooks import MAX_ATTEMPTS, WebhookDeliveryFailed, deliver_webhook, ping_webhook


@pytest.fixture
def use_settings(app: Flask) -> Iterator[Callable[..., None]]:
    original = app.extensions["botyard.settings"]

    def use(**changes: Any) -> None:
        app.extensions["botyard.settings"] = original.replace(**changes)

    use(webhook_allow_loopback=True)
    yield use
    app.extensions["botyard.settings"] = original


def hook_for(db: Any, user: Any, url: str, events: list[str], loopback: bool = True) -> Webhook:
    hook, _secret = create_webhook(user.id, url, events, None, limit=10, allow_loopback=loopback)
    db.commit()
    return hook


def webhook_deliveries(db: Any, note: Notification) -> list[NotificationDelivery]:
    return list(
        db.scalars(
            select(NotificationDelivery).where(
                NotificationDelivery.notification_id == note.id,
                NotificationDelivery.channel == "webhook",
            )
        )
    )


def attempts(db: Any, hook_id: uuid.UUID) -> list[WebhookAttempt]:
    stmt = select(WebhookAttempt).where(WebhookAttempt.webhook_id == hook_id)
    return list(db.scalars(stmt.order_by(WebhookAttempt.id)))


def test_a_notification_reaches_a_receiver_through_the_queue_with_a_valid_signature(
    app: Flask,
    client: FlaskClient,
    db: Any,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    use_settings: Callable[..., None],
) -> None:
    user = make_user()
    headers = bearer(login(user.username)["access_token"])
    with Sink() as sink:
        created = client.post(
            "/api/v1/me/webhooks",
            json={"url": sink.url("/botyard"), "events": ["bot.started"]},
            headers=headers,
        )
        assert created.status_code == 201
        secret = created.json["secret"]
        note = notify(user.id, "bot.started", {"bot_id": "b-1", "name": "Trend"})
        assert note is not None
        db.commit()  # the outbox relay queues the delivery job on commit
        [delivery] = webhook_deliveries(db, note)
        assert drain_notifications(app) is True

        [got] = sink.received
        assert verify(secret, got.headers, got.body)
        assert not verify("whsec_wrong", got.headers, got.body)
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"].startswith("Botyard-Webhooks/")
        assert got.headers["X-Botyard-Event"] == "bot.started"
        assert got.headers["X-Botyard-Delivery"] == str(delivery.id)
        body = orjson.loads(got.body)
        assert body["id"] == str(delivery.id) and body["event"] == "bot.started"
        assert body["data"]["id"] == note.id
        assert body["data"]["data"] == {"bot_id": "b-1", "name": "Trend"}

        delivery = db.get(NotificationDelivery, delivery.id)  # the worker ended the session
        assert (delivery.status, delivery.attempts) == ("sent", 1)
        [attempt] = attempts(db, delivery_hook_id(delivery))
        assert (attempt.succeeded, attempt.status_code, attempt.attempt) == (True, 200, 1)
        # Run again (a duplicate job, a retry after a crash): nothing is sent twice.
        assert deliver_webhook(str(delivery.id)) == "sent"
        assert len(sink.received) == 1


def delivery_hook_id(delivery: NotificationDelivery) -> uuid.UUID:
    return uuid.UUID(delivery.target)


def test_failed_attempts_are_retried_with_backoff_then_the_delivery_fails(
    app: Flask,
    db: Any,
    redis: Redis,
    make_user: Callable[..., Any],
    use_settings: Callable[..., None],
) -> None:
    use_settings(webhook_allow_loopback=True, webhook_max_failures=100)
    user = make_user()
    queue = get_queue(NOTIFICATIONS, redis)
    scheduled = ScheduledJobRegistry(queue=queue)
    with Sink(status=500) as sink:
        hook = hook_for(db, user, sink.url(), ["bot.stopped"])
        note = notify(user.id, "bot.stopped", {"bot_id": "b-2"})
        db.commit()
        [delivery] = webhook_deliveries(db, note)
        delivery_id, hook_id = delivery.id, hook.id
        job_id = delivery_job_id(delivery_id)
        assert WEBHOOK_RETRY.intervals == [30, 120, 600, 3600, 21600]
        for n, interval in enumerate([*WEBHOOK_RETRY.intervals, None], start=1):
            before = time.time()
            drain_notifications(app)
            after = time.time()
            assert len(sink.received) == n
            if interval is None:
                break
            # RQ scheduled the retry `interval` seconds after this failure...
            job = Job.fetch(job_id, connection=redis)
            due = scheduled.get_scheduled_time(job).timestamp()
            assert before + interval - 1 <= due <= after + interval + 1
            assert scheduled.get_jobs_to_schedule(int(after)) == []  # not due yet
            # ...and at that time (a controlled clock) RQ's scheduler moves it to the queue.
            assert scheduled.get_jobs_to_schedule(int(due)) == [job_id]
            scheduled.remove(job)
            queue.enqueue_job(job)

    assert MAX_ATTEMPTS == 6
    assert job_id in FailedJobRegistry(queue=queue).get_job_ids()  # retries spent
    delivery = db.get(NotificationDelivery, delivery_id)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 6, "HTTP 500")
    rows = attempts(db, hook_id)
    assert [(r.attempt, r.succeeded, r.status_code) for r in rows] == [
        (n, False, 500) for n in range(1, 7)
    ]
    assert {r.headers["X-Botyard-Delivery"] for r in sink.received} == {str(delivery.id)}
    hook = db.get(Webhook, hook_id)
    assert (hook.is_active, hook.consecutive_failures) == (True, 6)


def test_consecutive_failures_disable_the_hook_and_tell_the_owner_elsewhere(
    db: Any, make_user: Callable[..., Any], use_settings: Callable[..., None]
) -> None:
    use_settings(webhook_allow_loopback=True, webhook_max_failures=3)
    user = make_user()
    with Sink(status=503) as failing, Sink() as healthy:
        broken = hook_for(db, user, failing.url(), ["bot.started", "webhook.disabled"])
        other, secret = create_webhook(
            user.id, healthy.url(), ["webhook.disabled"], "pager", limit=10, allow_loopback=True
        )
        db.commit()
        first = notify(user.id, "bot.started", {"bot_id": "1"})
        second = notify(user.id, "bot.started", {"bot_id": "2"})
        db.commit()
        [d1], [d2] = webhook_deliveries(db, first), webhook_deliveries(db, second)

        for _ in range(2):  # each call is one attempt, as RQ's retries would make it
            with pytest.raises(WebhookDeliveryFailed):
                deliver_webhook(str(d1.id))
        assert deliver_webhook(str(d1.id)) == "disabled"  # the third failure in a row
        db.expire_all()
        hook = db.get(Webhook, broken.id)
        assert (hook.is_active, hook.consecutive_failures) == (False, 3)
        assert hook.disabled_at is not None
        assert hook.disabled_reason == "Disabled after 3 failed deliveries in a row."
        assert db.get(NotificationDelivery, d1.id).status == "failed"

        # The owner is told, on their other channels but not by the hook that failed.
        told = db.scalars(
            select(Notification).where(
                Notification.user_id == user.id, Notification.event == "webhook.disabled"
            )
        ).one()
        assert told.data["webhook_id"] == str(broken.id)
        assert told.data["host"] == "127.0.0.1" and told.data["consecutive_failures"] == 3
        [to_other] = webhook_deliveries(db, told)
        assert to_other.target == str(other.id)
        assert deliver_webhook(str(to_other.id)) == "sent"
        [news] = healthy.received
        assert verify(secret, news.headers, news.body)
        assert news.headers["X-Botyard-Event"] == "webhook.disabled"

        # What was still queued for the disabled hook is skipped, not sent.
        assert deliver_webhook(str(d2.id)) == "skipped"
        assert db.get(NotificationDelivery, d2.id).status == "skipped"
        assert len(failing.received) == 3


def test_a_success_resets_the_run_of_failures(
    db: Any, make_user: Callable[..., Any], use_settings: Callable[..., None]
) -> None:
    use_settings(webhook_allow_loopback=True, webhook_max_failures=3)
    user = make_user()
    with Sink(status=500) as sink:
        hook = hook_for(db, user, sink.url(), ["bot.started"])
        note = notify(user.id, "bot.started", {})
        db.commit()
        [delivery] = webhook_deliveries(db, note)
        for _ in range(2):
            with pytest.raises(WebhookDeliveryFailed):
                deliver_webhook(str(delivery.id))
        sink.status = 204
        assert deliver_webhook(str(delivery.id)) == "sent"
    db.refresh(hook)
    assert (hook.is_active, hook.consecutive_failures) == (True, 0)


def test_a_host_that_now_resolves_to_loopback_is_refused_at_delivery(
    db: Any,
    make_user: Callable[..., Any],
    use_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_settings(webhook_allow_loopback=False)
    dns = FakeDns(monkeypatch)
    user = make_user()
    with Sink() as sink:
        dns.names["rebind.example.test"] = "93.184.216.34"  # public when the hook is made
        hook = hook_for(
            db, user, sink.url(host="rebind.example.test"), ["bot.started"], loopback=False
        )
        dns.names["rebind.example.test"] = "127.0.0.1"  # then the DNS answer changes
        note = notify(user.id, "bot.started", {})
        db.commit()
        [delivery] = webhook_deliveries(db, note)
        with pytest.raises(WebhookDeliveryFailed):
            deliver_webhook(str(delivery.id))
        assert sink.received == []
    [attempt] = attempts(db, hook.id)
    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.error is not None
    assert attempt.error.startswith("Refused:") and "loopback" in attempt.error


def test_the_connection_goes_to_the_vetted_address_and_host_names_the_url_host(
    db: Any,
    make_user: Callable[..., Any],
    use_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dns = FakeDns(monkeypatch)
    dns.names["pinned.example.test"] = "127.0.0.1"  # a name no real resolver knows
    user = make_user()
    with Sink() as sink:
        hook = hook_for(db, user, sink.url("/in?x=1", host="pinned.example.test"), ["bot.stopped"])
        lookups_before = len(dns.lookups)
        assert ping_webhook(str(hook.id), str(uuid.uuid4())) == "sent"
        [got] = sink.received
    assert got.headers["Host"] == f"pinned.example.test:{sink.port}"
    assert got.path == "/in?x=1"
    assert len(dns.lookups) - lookups_before == 1  # resolved once, by the check; then pinned
    [attempt] = attempts(db, hook.id)
    assert (attempt.event, attempt.delivery_id, attempt.succeeded) == ("ping", None, True)


def test_https_checks_the_certificate_against_the_url_host_on_the_pinned_address(
    db: Any,
    make_user: Callable[..., Any],
    use_settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", key, "-out", cert, "-subj", "/CN=pinned.example.test"),
            *("-addext", "subjectAltName=DNS:pinned.example.test"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    monkeypatch.setenv("SSL_CERT_FILE", cert)  # trust our certificate (and only it)
    dns = FakeDns(monkeypatch)
    dns.names["pinned.example.test"] = dns.names["other.example.test"] = "127.0.0.1"
    user = make_user()
    with Sink(tls=(cert, key)) as sink:
        good = hook_for(db, user, sink.url(host="pinned.example.test"), ["bot.stopped"])
        wrong = hook_for(db, user, sink.url(host="other.example.test"), ["bot.stopped"])
        assert ping_webhook(str(good.id), str(uuid.uuid4())) == "sent"
        assert ping_webhook(str(wrong.id), str(uuid.uuid4())) == "failed"
        [got] = sink.received  # the certificate does not name other.example.test
    assert got.headers["Host"] == f"pinned.example.test:{sink.port}"
    [refused] = attempts(db, wrong.id)
    assert refused.error is not None and refused.error.startswith("TLS error")


def test_a_redirect_to_loopback_is_not_followed(
    db: Any, make_user: Callable[..., Any], use_settings: Callable[..., None]
) -> None:
    user = make_user()
    with Sink() as target, Sink(status=302) as redirecting:
        redirecting.location = target.url("/internal")
        hook = hook_for(db, user, redirecting.url(), ["bot.started"])
        note = notify(user.id, "bot.started", {})
        db.commit()
        [delivery] = webhook_deliveries(db, note)
        with pytest.raises(WebhookDeliveryFailed):
            deliver_webhook(str(delivery.id))
        assert len(redirecting.received) == 1
        assert target.received == []  # the redirect target never sees a request
    [attempt] = attempts(db, hook.id)
    assert attempt.status_code == 302 and not attempt.succeeded
    assert attempt.error == "HTTP 302: redirects are not followed"


def test_a_deleted_hook_skips_its_queued_deliveries(
    db: Any, make_user: Callable[..., Any], use_settings: Callable[..., None]
) -> None:
    user = make_user()
    with Sink() as sink:
        hook = hook_for(db, user, sink.url(), ["bot.started"])
        note = notify(user.id, "bot.started", {})
        db.commit()
        [delivery] = webhook_deliveries(db, note)
        db.delete(hook)
        db.commit()
        assert deliver_webhook(str(delivery.id)) == "skipped"
        assert sink.received == []
    assert db.get(NotificationDelivery, delivery.id).status == "skipped"
    assert deliver_webhook(str(uuid.uuid4())) == "missing"


def test_webhook_settings_silence_the_channel(
    db: Any, make_user: Callable[..., Any], use_settings: Callable[..., None]
) -> None:
    user = make_user()
    hook_for(db, user, "http://127.0.0.1:9/hook", ["bot.started"])
    off = {"in_app": True, "email": False, "webhook": False, "digest": False}
    db.add(AccountSettings(user_id=user.id, document={"notifications": {"bot.started": off}}))
    db.commit()
    note = notify(user.id, "bot.started", {})
    assert note is not None and webhook_deliveries(db, note) == []
