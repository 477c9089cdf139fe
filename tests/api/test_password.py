"""Password reset and change, end to end: API -> RQ notifications queue -> real SMTP server."""

from __future__ import annotations

import email
import re
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import select

from models.identity.password_resets import token_digest
from models.identity.tables import AuthSession, PasswordResetToken
from tests.helpers import PASSWORD, bearer
from workers.main import build_worker
from workers.queues import NOTIFICATIONS

FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
CHANGE = "/api/v1/auth/password/change"
NEW_PASSWORD = "a-brand-new-password"
FRONTEND = "https://app.botyard.test"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def inbox(app: Flask) -> Iterator[Inbox]:
    handler = Inbox()
    with socket.socket() as probe:  # aiosmtpd's Controller cannot start on port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(
        smtp_url=f"smtp://127.0.0.1:{port}", frontend_url=FRONTEND
    )
    yield handler
    app.extensions["botyard.settings"] = original
    controller.stop()


def drain(app: Flask) -> None:
    """Run the notifications queue to empty, in-process, exactly as a worker would."""
    assert build_worker(app, (NOTIFICATIONS,), simple=True).work(burst=True) is True


def body(message: Message, kind: str = "plain") -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{kind}":
            return str(part.get_payload(decode=True).decode())
    raise AssertionError(f"no text/{kind} part")


def reset_token(message: Message) -> str:
    found = re.search(
        re.escape(FRONTEND) + r"/reset-password#token=([A-Za-z0-9_-]+)", body(message)
    )
    assert found, body(message)
    return found.group(1)


def forgot(client: FlaskClient, address: str, **kwargs: Any) -> Any:
    return client.post(FORGOT, json={"email": address}, **kwargs)


def test_reset_flow_through_the_queue_and_smtp(
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    app: Flask,
    client: FlaskClient,
    db: Any,
    make_user: Callable[..., Any],
    login: Callable[..., dict[str, Any]],
    inbox: Inbox,
) -> None:
    user = make_user("forgetful")
    old = login("forgetful")
    response = forgot(client, "Forgetful@Example.com")
    assert response.status_code == 202
    assert "If an account uses that email" in response.json["message"]
    assert inbox.messages == []  # nothing is sent inside the request
    drain(app)

    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == "forgetful@example.com"
    assert message["Subject"] == "Reset your Botyard password"
    token = reset_token(message)
    assert len(token) >= 22  # at least 128 bits, url-safe base64
    assert f'href="{FRONTEND}/reset-password#token={token}"' in body(message, "html")
    stored = db.scalars(select(PasswordResetToken).where(PasswordResetToken.user_id == user.id))
    (row,) = stored.all()
    assert row.token_hash == token_digest(token) and token not in row.token_hash
    assert row.expires_at - row.created_at == timedelta(minutes=30)

    assert (
        client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD}).status_code == 204
    )
    # Every session of the account is gone; the new password works, the old one doesn't.
    assert client.get("/api/v1/me", headers=bearer(old["access_token"])).status_code == 401
    live = db.scalars(select(AuthSession).where(AuthSession.user_id == user.id))
    assert all(s.revoked_reason == "password_reset" for s in live)
    login("forgetful", NEW_PASSWORD)
    bad = client.post("/api/v1/auth/login", json={"login": "forgetful", "password": PASSWORD})
    assert bad.status_code == 401

    drain(app)
    assert inbox.messages[-1]["Subject"] == "Your Botyard password was changed"
    assert "every other session" in body(inbox.messages[-1])

    # Single use.
    again = client.post(RESET, json={"token": token, "new_password": "yet-another-password"})
    assert again.status_code == 400
    assert again.json["message"] == "This reset link is invalid or has expired; ask for a new one."

    # The secret and the passwords never reach a log line.
    logged = caplog.text + "".join(capfd.readouterr())
    assert "password_reset_sent" in logged
    for secret in (token, NEW_PASSWORD, PASSWORD):
        assert secret not in logged


def test_expired_unknown_and_superseded_tokens_get_one_generic_400(
    app: Flask,
    client: FlaskClient,
    db: Any,
    make_user: Callable[..., Any],
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_user("slowpoke")
    forgot(client, "slowpoke@example.com")
    drain(app)
    first = reset_token(inbox.messages[-1])
    forgot(client, "slowpoke@example.com")
    drain(app)
    second = reset_token(inbox.messages[-1])
    assert first != second

    def reset(token: str) -> Any:
        return client.post(RESET, json={"token": token, "new_password": NEW_PASSWORD})

    superseded, unknown = reset(first), reset("x" * 43)
    assert superseded.status_code == unknown.status_code == 400
    assert superseded.json["message"] == unknown.json["message"]

    # A minute past its expiry the newest token is refused too (times from the token's own
    # row: the test's clock may run well behind the job's on a loaded machine) ...
    expires_at = db.scalars(
        select(PasswordResetToken.expires_at).where(PasswordResetToken.used_at.is_(None))
    ).one()
    monkeypatch.setattr("api.auth.password.now_utc", lambda: expires_at + timedelta(minutes=1))
    expired = reset(second)
    assert expired.status_code == 400 and expired.json["message"] == unknown.json["message"]
    # ... while a minute before it, it works.
    monkeypatch.setattr("api.auth.password.now_utc", lambda: expires_at - timedelta(minutes=1))
    assert reset(second).status_code == 204


def test_forgot_does_not_reveal_whether_an_account_exists(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any], redis: Redis, inbox: Inbox
) -> None:
    make_user("known")
    queue = Queue(NOTIFICATIONS, connection=redis)
    known = forgot(client, "known@example.com")
    unknown = forgot(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    # Both requests did the same work: one queued job each, and no lookup in the request.
    jobs = [queue.fetch_job(job_id) for job_id in queue.job_ids]
    assert [j.func_name for j in jobs] == ["workers.account_mail.send_password_reset"] * 2
    assert [j.args for j in jobs] == [("known@example.com",), ("nobody@example.com",)]
    assert all(j.description == "send_password_reset" for j in jobs)  # no address in RQ's logs
    drain(app)
    assert [m["To"] for m in inbox.messages] == ["known@example.com"]


def test_the_link_ignores_the_host_header(
    app: Flask, client: FlaskClient, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    make_user("victim")
    response = forgot(
        client,
        "victim@example.com",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
    )
    assert response.status_code == 202
    drain(app)
    text = body(inbox.messages[-1])
    assert "evil.example" not in text and f"{FRONTEND}/reset-password#token=" in text


def test_disabled_accounts_get_no_link(
    app: Flask, client: FlaskClient, db: Any, make_user: Callable[..., Any], inbox: Inbox
) -> None:
    user = make_user("gone")
    user.is_active = False
    db.commit()
    assert forgot(client, "gone@example.com").status_code == 202
    drain(app)
    assert inbox.messages == []


def test_change_needs_a_fresh_token_and_the_current_password(
    app: Flask,
    client: FlaskClient,
    make_user: Callable[..., Any],
    login: Callable[..., dict[str, Any]],
    inbox: Inbox,
) -> None:
    make_user("changer")
    other = login("changer")
    current = login("changer")
    refreshed = client.post("/api/v1/auth/refresh", headers=bearer(current["refresh_token"])).json[
        "access_token"
    ]

    payload = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    stale = client.post(CHANGE, json=payload, headers=bearer(refreshed))
    assert stale.status_code == 401 and "fresh login" in stale.json["message"]

    fresh = bearer(login("changer")["access_token"])
    wrong = client.post(
        CHANGE, json={**payload, "current_password": "not-my-password"}, headers=fresh
    )
    assert wrong.status_code == 422 and "current_password" in wrong.json["errors"]["json"]
    short = client.post(CHANGE, json={**payload, "new_password": "short"}, headers=fresh)
    assert short.status_code == 422 and "new_password" in short.json["errors"]["json"]

    assert client.post(CHANGE, json=payload, headers=fresh).status_code == 204
    # The calling session survives; the others are revoked.
    assert client.get("/api/v1/me", headers=fresh).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(other["access_token"])).status_code == 401
    login("changer", NEW_PASSWORD)
    drain(app)
    assert inbox.messages[-1]["Subject"] == "Your Botyard password was changed"


def test_forgot_and_reset_are_rate_limited(app: Flask, client: FlaskClient, redis: Redis) -> None:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(
        rate_limit_reset_ip="3/hour", rate_limit_reset_email="2/hour"
    )
    try:
        per_email = [
            forgot(client, "target@example.com", environ_base={"REMOTE_ADDR": f"10.9.0.{i}"})
            for i in range(3)
        ]
        assert [r.status_code for r in per_email] == [202, 202, 429]
        per_ip = [
            client.post(
                RESET,
                json={"token": f"guess-{i}", "new_password": NEW_PASSWORD},
                environ_base={"REMOTE_ADDR": "10.9.1.1"},
            ).status_code
            for i in range(4)
        ]
        assert per_ip == [400, 400, 400, 429]
    finally:
        app.extensions["botyard.settings"] = original
