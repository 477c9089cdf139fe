"""Deleting an account: deactivated at once, cancelled by a login, erased after the grace period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import select, text

from models.bots.bots import Bot
from models.bots.runs import BotRun
from models.db import Base
from models.identity.tables import AuthSession, User
from models.people.tables import Activity, Notification, NotificationDelivery
from tests.api.account_data import fill_account
from tests.helpers import PASSWORD, bearer
from workers.main import build_worker
from workers.queues import DEFAULT

GRACE = timedelta(days=30)  # ACCOUNT_DELETION_GRACE_DAYS


def delete_me(client: FlaskClient, headers: dict[str, str], password: str = PASSWORD) -> Any:
    return client.delete("/api/v1/me", json={"password": password}, headers=headers)


def verbs(db: Any, user_id: Any) -> list[str]:
    return list(
        db.scalars(select(Activity.verb).where(Activity.actor_id == user_id).order_by(Activity.id))
    )


def test_a_wrong_or_missing_password_deletes_nothing(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    user = make_user()
    headers = bearer(login(user.username)["access_token"])
    wrong = delete_me(client, headers, password="not-my-password")
    assert wrong.status_code == 422 and wrong.json["errors"]["json"]["password"]
    missing = client.delete("/api/v1/me", json={}, headers=headers)
    assert missing.status_code == 422 and missing.json["errors"]["json"]["password"]
    assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 401
    db.refresh(user)
    assert user.is_active and user.deletion_requested_at is None
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_deletion_deactivates_at_once_and_a_login_in_the_grace_period_cancels_it(
    client: FlaskClient,
    db: Any,
    redis: Redis,
    live_owner: Any,
    ticked_run: BotRun,
    login: Callable[..., Any],
) -> None:
    second = login(live_owner.username)  # another device: its tokens must die too
    before = datetime.now(UTC)
    response = delete_me(client, live_owner.headers)
    assert response.status_code == 202, response.json
    due = datetime.fromisoformat(response.json["deletion_due_at"])
    assert before + GRACE <= due <= datetime.now(UTC) + GRACE
    assert "log in" in response.json["message"]

    # Every token is refused at once, from the token cache and from Postgres alike.
    for _ in range(2):
        for headers in (live_owner.headers, bearer(second["access_token"])):
            refused = client.get("/api/v1/me", headers=headers)
            assert refused.status_code == 401, refused.json
        refresh = client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"]))
        assert refresh.status_code == 401
        redis.flushdb()
    sessions = db.scalars(select(AuthSession).where(AuthSession.user_id == live_owner.id)).all()
    assert sessions and all(s.revoked_reason == "account_deleted" for s in sessions)

    user = db.get(User, live_owner.id)
    db.refresh(user)
    assert not user.is_active and user.deletion_due_at == due
    bot = db.get(Bot, ticked_run.bot_id)
    db.refresh(bot)
    db.refresh(ticked_run)
    assert bot.status == "stopped" and ticked_run.status == "stopped"
    note = db.scalar(
        select(Notification).where(
            Notification.user_id == live_owner.id,
            Notification.event == "account.deletion_scheduled",
        )
    )
    assert note is not None and note.data == {"due_at": due.isoformat()}
    channels = db.scalars(
        select(NotificationDelivery.channel).where(NotificationDelivery.notification_id == note.id)
    ).all()
    assert "email" in channels  # a security event: always emailed
    assert "account.deletion_requested" in verbs(db, live_owner.id)

    # Logging in with the right password cancels it; the wrong one does not.
    wrong = client.post(
        "/api/v1/auth/login", json={"login": live_owner.username, "password": "nope-nope-nope"}
    )
    assert wrong.status_code == 401
    body = login(live_owner.username)
    assert body["deletion_cancelled"] is True
    db.refresh(user)
    assert user.is_active and user.deletion_requested_at is None and user.deletion_due_at is None
    assert verbs(db, live_owner.id)[-2:] == ["account.deletion_cancelled", "auth.login"]
    assert client.get("/api/v1/me", headers=bearer(body["access_token"])).status_code == 200
    db.refresh(bot)
    assert bot.status == "stopped"  # the owner starts again what they want
    assert login(live_owner.username)["deletion_cancelled"] is False


def test_no_login_once_the_grace_period_is_over_or_an_admin_disabled_the_account(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    late, disabled = make_user(), make_user()
    for user in (late, disabled):
        assert delete_me(client, bearer(login(user.username)["access_token"])).status_code == 202
    db.refresh(late)
    late.deletion_due_at = datetime.now(UTC) - timedelta(seconds=1)  # the grace period ran out
    db.refresh(disabled)
    disabled.disabled_at = datetime.now(UTC)
    db.commit()
    for user in (late, disabled):
        refused = client.post(
            "/api/v1/auth/login", json={"login": user.username, "password": PASSWORD}
        )
        assert refused.status_code == 401, refused.json


def test_the_last_admin_cannot_delete_their_account(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], login: Callable[..., Any]
) -> None:
    admin = make_user(roles=("admin", "user"))  # the only one: each test starts with none
    refused = delete_me(client, bearer(login(admin.username)["access_token"]))
    assert refused.status_code == 409 and "admin" in refused.json["message"]


def _rows_mentioning(db: Any, needles: list[str], skip: set[str]) -> dict[str, int]:
    """Tables (but ``skip``) with a row whose text form contains one of ``needles``."""
    found = {}
    for table in Base.metadata.sorted_tables:
        if table.name in skip:
            continue
        clauses = " OR ".join(f"strpos(t::text, :n{i}) > 0" for i in range(len(needles)))
        count = db.execute(
            text(f'SELECT count(*) FROM "{table.name}" t WHERE {clauses}'),  # noqa: S608
            {f"n{i}": needle for i, needle in enumerate(needles)},
        ).scalar_one()
        if count:
            found[table.name] = count
    return found


def test_erasure_after_the_grace_period_leaves_nothing_personal(
    app: Flask,
    client: FlaskClient,
    db: Any,
    live_owner: Any,
    ticked_run: BotRun,
    make_user: Callable[..., Any],
    login: Callable[..., Any],
    redis: Redis,
) -> None:
    owned = fill_account(app, client, db, live_owner, live_owner.headers, ticked_run)
    export = client.post("/api/v1/me/export", headers=live_owner.headers)
    assert export.status_code == 202
    build_worker(app, (DEFAULT,), simple=True).work(burst=True)
    bystander = make_user()
    bystander_headers = bearer(login(bystander.username)["access_token"])
    old_name = live_owner.username
    assert delete_me(client, live_owner.headers).status_code == 202
    due = db.get(User, live_owner.id).deletion_due_at
    needles = [str(owned.user_id), owned.user_id.hex, owned.email, owned.username]
    needles += [owned.bot_id, owned.run_id, owned.backtest_id, owned.webhook_id, "203.0.113.7"]
    assert len(_rows_mentioning(db, needles, skip=set())) > 10

    queue = Queue(DEFAULT, connection=redis)
    for at, erased in ((due - timedelta(seconds=1), 0), (due, 1), (due + timedelta(hours=1), 0)):
        job = queue.enqueue("workers.lifecycle.erase_due_accounts", at.isoformat())
        build_worker(app, (DEFAULT,), simple=True).work(burst=True)
        assert job.return_value() == erased, (at, job.exc_info)

    # Only the anonymised account row and its scrubbed activity rows still carry its id.
    assert _rows_mentioning(db, needles, skip={"users", "activities"}) == {}
    user = db.get(User, owned.user_id)
    db.refresh(user)
    assert user.erased_at == due and not user.is_active and user.roles == []
    assert user.email == f"deleted-{owned.user_id}@deleted.invalid"
    assert user.username == f"deleted-{owned.user_id.hex[:12]}"
    assert user.display_name == "deleted user"
    assert (user.bio, user.avatar_url, user.timezone, user.locale) == (None,) * 4
    row = db.execute(
        text("SELECT t::text FROM users t WHERE id = :id"), {"id": owned.user_id}
    ).scalar_one()
    assert owned.email not in row and old_name not in row and "$argon2" not in row
    kept = db.scalars(select(Activity).where(Activity.actor_id == owned.user_id)).all()
    assert {"bot.created", "account.deletion_requested"} <= {a.verb for a in kept}
    assert all(a.ip is None and a.user_agent is None and a.data == {} for a in kept)

    # Nobody can log in as them; what others have is untouched.
    for name in (old_name, owned.email, user.username):
        refused = client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
        assert refused.status_code == 401
    assert client.get("/api/v1/me", headers=bystander_headers).status_code == 200
