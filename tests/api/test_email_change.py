"""Email change end to end: API -> RQ notifications queue -> a real loopback SMTP server."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import select

from models.identity.password_resets import token_digest
from models.identity.tables import User
from models.people.tables import Activity, EmailChangeToken, Notification
from tests.api import test_password as password_mail
from tests.api.test_password import FRONTEND, Inbox, body, drain
from tests.helpers import PASSWORD, bearer
from workers import email_change as jobs
from workers.queues import NOTIFICATIONS

# The loopback SMTP server of the password tests, as this module's fixture.
inbox = password_mail.inbox

REQUEST = "/api/v1/me/email"
CONFIRM = "/api/v1/me/email/confirm"
CONFIRM_SUBJECT = "Confirm your new Botyard email address"
CHANGED_SUBJECT = "Your Botyard email address was changed"
GENERIC = "This confirmation link is invalid or has expired; ask for a new one."


@pytest.fixture
def alice(make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]) -> Any:
    user = make_user("alice_mover")
    user.headers = bearer(login(user.username)["access_token"])
    return user


def ask(client: FlaskClient, headers: dict[str, str], new_email: str, **extra: Any) -> Any:
    return client.post(
        REQUEST, json={"new_email": new_email, "password": PASSWORD, **extra}, headers=headers
    )


def mails(inbox: Inbox, subject: str, to: str | None = None) -> list[Message]:
    return [m for m in inbox.messages if m["Subject"] == subject and (to is None or m["To"] == to)]


def run_mail_jobs(redis: Redis) -> list[Any]:
    """Run this area's queued jobs in order, each as a worker would call it (the whole-flow
    test goes through a real worker; this skips RQ's per-worker set-up and teardown)."""
    queue = Queue(NOTIFICATIONS, connection=redis)
    results = []
    for job in [queue.fetch_job(job_id) for job_id in queue.job_ids]:
        if job is not None and job.func_name.startswith("workers.email_change."):
            queue.remove(job)
            results.append(job.perform())
    return results


def link_token(message: Message) -> str:
    found = re.search(re.escape(FRONTEND) + r"/confirm-email#token=([A-Za-z0-9_-]+)", body(message))
    assert found, body(message)
    return found.group(1)


def test_the_whole_change_through_the_queue_and_smtp(
    app: Flask, client: FlaskClient, db: Any, alice: Any, inbox: Inbox, redis: Redis
) -> None:
    response = ask(client, alice.headers, "Alice.New@Example.ORG")
    assert response.status_code == 202, response.json
    assert "Alice.New@example.org" in response.json["message"]
    assert inbox.messages == []  # nothing is sent inside the request
    (job,) = [
        j
        for j in (
            Queue(NOTIFICATIONS, connection=redis).fetch_job(i)
            for i in Queue(NOTIFICATIONS, connection=redis).job_ids
        )
        if j is not None and j.func_name == "workers.email_change.send_email_change_link"
    ]
    (pending,) = db.scalars(select(EmailChangeToken).where(EmailChangeToken.user_id == alice.id))
    assert job.args == (str(pending.id),) and job.description == "send_email_change_link"
    assert pending.new_email == "Alice.New@example.org" and pending.used_at is None
    # The address stays until confirmed.
    assert (
        client.get("/api/v1/me", headers=alice.headers).json["email"] == "alice_mover@example.com"
    )

    drain(app)
    (message,) = mails(inbox, CONFIRM_SUBJECT)
    assert message["To"] == "Alice.New@example.org"
    token = link_token(message)
    assert len(token) >= 43  # 256 bits, url-safe base64
    assert f'href="{FRONTEND}/confirm-email#token={token}"' in body(message, "html")
    assert "24 hours" in body(message)
    db.expire_all()
    row = db.get(EmailChangeToken, pending.id)
    assert row.token_hash == token_digest(token)
    assert row.expires_at - row.created_at == pytest.approx(
        timedelta(days=1), abs=timedelta(minutes=5)
    )

    confirmed = client.post(CONFIRM, json={"token": token})
    assert confirmed.status_code == 200, confirmed.json
    assert confirmed.json == {"email": "Alice.New@example.org"}
    me = client.get("/api/v1/me", headers=alice.headers).json
    assert me["email"] == "Alice.New@example.org"
    db.expire_all()
    assert db.get(User, alice.id).email_key == "alice.new@example.org"
    assert db.get(EmailChangeToken, pending.id).used_reason == "confirmed"
    # Log in with the new address, not the old one.
    ok = client.post(
        "/api/v1/auth/login", json={"login": "alice.new@EXAMPLE.org", "password": PASSWORD}
    )
    assert ok.status_code == 200
    old = client.post(
        "/api/v1/auth/login", json={"login": "alice_mover@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401

    # The old address is told, directly.
    run_mail_jobs(redis)
    (notice,) = mails(inbox, CHANGED_SUBJECT)
    assert notice["To"] == "alice_mover@example.com"
    assert "example.org" in body(notice) and token not in body(notice)
    # Once only.
    again = client.post(CONFIRM, json={"token": token})
    assert again.status_code == 400 and again.json["message"] == GENERIC

    events = db.scalars(
        select(Notification).where(Notification.user_id == alice.id).order_by(Notification.id)
    ).all()
    assert [(n.event, n.data) for n in events] == [
        ("account.email_change_requested", {"new_email_domain": "example.org"}),
        ("account.email_changed", {"new_email_domain": "example.org"}),
    ]
    verbs = db.scalars(
        select(Activity).where(Activity.actor_id == alice.id).order_by(Activity.id)
    ).all()
    tracked = [(a.verb, a.object_id) for a in verbs if a.verb.startswith("email.")]
    assert tracked == [
        ("email.change_requested", str(alice.id)),
        ("email.changed", str(alice.id)),
    ]


def test_a_wrong_password_changes_nothing(
    client: FlaskClient, db: Any, alice: Any, redis: Redis
) -> None:
    response = ask(client, alice.headers, "new@example.org", password="not-my-password")
    assert response.status_code == 422
    assert response.json["errors"]["json"]["password"] == ["That is not your current password."]
    assert db.scalars(select(EmailChangeToken)).all() == []
    assert Queue(NOTIFICATIONS, connection=redis).count == 0
    assert db.scalars(select(Notification).where(Notification.user_id == alice.id)).all() == []


@pytest.mark.parametrize(
    "new_email",
    [
        "not-an-email",
        "someone@localhost",
        "someone@example.test",
        "someone@[127.0.0.1]",
        "someone@10.0.0.1",
        "ünicode@example.org",
        "a" * 250 + "@example.org",
        "",
    ],
)
def test_new_addresses_follow_the_registration_rules(
    client: FlaskClient, db: Any, alice: Any, new_email: str
) -> None:
    response = ask(client, alice.headers, new_email)
    assert response.status_code == 422, response.json
    assert set(response.json["errors"]["json"]) == {"new_email"}
    assert db.scalars(select(EmailChangeToken)).all() == []


def test_bodies_are_strict(client: FlaskClient, alice: Any) -> None:
    extra = ask(client, alice.headers, "new@example.org", username="x")
    assert extra.status_code == 422 and "username" in extra.json["errors"]["json"]
    missing = client.post(REQUEST, json={"new_email": "new@example.org"}, headers=alice.headers)
    assert missing.status_code == 422 and "password" in missing.json["errors"]["json"]
    assert (
        client.post(REQUEST, json={"new_email": "n@example.org", "password": PASSWORD}).status_code
        == 401
    )
    assert client.post(CONFIRM, json={}).status_code == 422
    assert client.post(CONFIRM, json={"token": "x" * 129}).status_code == 422
    assert client.post(CONFIRM, json={"token": "x", "user_id": "y"}).status_code == 422


def test_taken_and_unchanged_addresses(
    client: FlaskClient, db: Any, alice: Any, make_user: Callable[..., Any]
) -> None:
    make_user("bob_holder")
    taken = ask(client, alice.headers, "BOB_HOLDER@example.com")
    assert taken.status_code == 409
    assert taken.json["message"] == "That email is already registered."
    same = ask(client, alice.headers, "Alice_Mover@EXAMPLE.com")
    assert same.status_code == 422
    assert same.json["errors"]["json"]["new_email"] == ["That is already your email."]
    assert db.scalars(select(EmailChangeToken)).all() == []


def test_a_newer_request_supersedes_older_links(
    app: Flask, redis: Redis, client: FlaskClient, db: Any, alice: Any, inbox: Inbox
) -> None:
    assert ask(client, alice.headers, "first@example.org").status_code == 202
    run_mail_jobs(redis)
    first = link_token(mails(inbox, CONFIRM_SUBJECT, "first@example.org")[0])
    # Two more requests before the queue runs: only the last is ever mailed.
    assert ask(client, alice.headers, "second@example.org").status_code == 202
    assert ask(client, alice.headers, "third@example.org").status_code == 202
    assert client.post(CONFIRM, json={"token": first}).status_code == 400  # dead at once
    run_mail_jobs(redis)
    assert mails(inbox, CONFIRM_SUBJECT, "second@example.org") == []
    third = link_token(mails(inbox, CONFIRM_SUBJECT, "third@example.org")[0])
    reasons = db.scalars(
        select(EmailChangeToken.used_reason).order_by(EmailChangeToken.created_at)
    ).all()
    assert reasons == ["superseded", "superseded", None]
    assert client.post(CONFIRM, json={"token": third}).json == {"email": "third@example.org"}


def test_the_link_job_is_idempotent_and_a_retry_voids_the_earlier_link(
    app: Flask, client: FlaskClient, db: Any, alice: Any, inbox: Inbox
) -> None:
    assert ask(client, alice.headers, "retry@example.org").status_code == 202
    (pending,) = db.scalars(select(EmailChangeToken))
    assert jobs.send_email_change_link(str(pending.id)) == "sent"
    assert jobs.send_email_change_link(str(pending.id)) == "sent"  # as a retry would
    early, late = (link_token(m) for m in mails(inbox, CONFIRM_SUBJECT))
    assert client.post(CONFIRM, json={"token": early}).status_code == 400
    assert client.post(CONFIRM, json={"token": late}).status_code == 200
    # After confirmation a late retry sends nothing.
    assert jobs.send_email_change_link(str(pending.id)) == "superseded"
    assert len(mails(inbox, CONFIRM_SUBJECT)) == 2
    assert jobs.send_email_changed_notice(str(alice.id), "alice_mover@example.com") == "sent"


def test_expired_unknown_and_dead_account_tokens_get_one_generic_400(
    app: Flask, redis: Redis, client: FlaskClient, db: Any, alice: Any, inbox: Inbox
) -> None:
    unknown = client.post(CONFIRM, json={"token": "A" * 43})
    assert unknown.status_code == 400 and unknown.json["message"] == GENERIC
    ask(client, alice.headers, "later@example.org")
    run_mail_jobs(redis)
    token = link_token(mails(inbox, CONFIRM_SUBJECT)[0])
    # Test set-up: move the expiry into the past (the API compares with its own clock).
    row = db.scalars(select(EmailChangeToken)).one()
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    db.commit()
    expired = client.post(CONFIRM, json={"token": token})
    assert expired.status_code == 400 and expired.json["message"] == GENERIC
    row.expires_at = datetime.now(UTC) + timedelta(hours=1)
    db.get(User, alice.id).is_active = False
    db.commit()
    disabled = client.post(CONFIRM, json={"token": token})
    assert disabled.status_code == 400 and disabled.json["message"] == GENERIC
    db.expire_all()
    assert db.get(User, alice.id).email == "alice_mover@example.com"


def test_an_address_taken_meanwhile_is_checked_again_at_confirmation(
    app: Flask,
    redis: Redis,
    client: FlaskClient,
    db: Any,
    alice: Any,
    inbox: Inbox,
    make_user: Callable[..., Any],
) -> None:
    ask(client, alice.headers, "racer@example.com")
    run_mail_jobs(redis)
    token = link_token(mails(inbox, CONFIRM_SUBJECT)[0])
    make_user("racer")  # registers racer@example.com first
    conflict = client.post(CONFIRM, json={"token": token})
    assert conflict.status_code == 409
    db.expire_all()
    assert db.get(User, alice.id).email == "alice_mover@example.com"
    assert db.scalars(select(EmailChangeToken)).one().used_at is None  # still usable
    assert mails(inbox, CHANGED_SUBJECT) == []


def test_anothers_request_leaves_mine_alone(
    app: Flask,
    redis: Redis,
    client: FlaskClient,
    db: Any,
    alice: Any,
    inbox: Inbox,
    stranger: dict[str, str],
) -> None:
    ask(client, alice.headers, "mine@example.org")
    assert ask(client, stranger, "theirs@example.org").status_code == 202
    run_mail_jobs(redis)
    mine = link_token(mails(inbox, CONFIRM_SUBJECT, "mine@example.org")[0])
    assert client.post(CONFIRM, json={"token": mine}).json == {"email": "mine@example.org"}
    db.expire_all()
    assert db.get(User, alice.id).email == "mine@example.org"
    # Mine superseded nothing of theirs: their link still works, for their account.
    theirs = link_token(mails(inbox, CONFIRM_SUBJECT, "theirs@example.org")[0])
    assert client.post(CONFIRM, json={"token": theirs}).status_code == 200


def test_old_tokens_are_purged_and_the_purge_is_idempotent(
    client: FlaskClient, db: Any, alice: Any
) -> None:
    for address in ("one@example.org", "two@example.org", "three@example.org"):
        assert ask(client, alice.headers, address).status_code == 202
    rows = db.scalars(select(EmailChangeToken).order_by(EmailChangeToken.created_at)).all()
    # Test set-up: the first was superseded, the second expired, over a week ago.
    long_ago = datetime.now(UTC) - timedelta(days=8)
    rows[0].used_at = long_ago
    rows[1].used_at, rows[1].expires_at = None, long_ago
    db.commit()
    assert jobs.purge_email_changes() == 2
    assert jobs.purge_email_changes() == 0
    assert [row.new_email for row in db.scalars(select(EmailChangeToken))] == ["three@example.org"]
