"""A user who owns something of every kind: what export and erasure tests look for."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from models.bots.runs import BotRun
from models.identity.tables import PasswordResetToken
from models.people.activities import record
from models.people.notifications import notify
from models.people.tables import (
    AccountSettings,
    EmailChangeToken,
    Webhook,
    WebhookAttempt,
)
from tests.api.conftest import END
from workers.main import build_worker
from workers.queues import BACKTESTS

DAY = 86_400_000


@dataclass
class Owned:
    """Ids and secrets of what :func:`fill_account` made for one user."""

    user_id: uuid.UUID
    email: str
    username: str
    bot_id: str
    run_id: str
    backtest_id: str
    webhook_id: str
    notification_id: int
    secrets: list[str] = field(default_factory=list)


def fill_account(
    app: Flask, client: FlaskClient, db: Any, user: Any, headers: dict[str, str], run: BotRun
) -> Owned:
    """Give ``user`` (who owns ``run``) a backtest with trades, a notification, an activity,
    a webhook with an attempt, settings, an email change and a password reset in progress."""
    body = {"bot_id": str(run.bot_id), "start": END - 5 * DAY, "end": END}
    response = client.post("/api/v1/backtests", json=body, headers=headers)
    assert response.status_code == 202, response.json
    backtest_id = response.json["id"]
    assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True)
    done = client.get(f"/api/v1/backtests/{backtest_id}", headers=headers).json
    assert done["status"] == "succeeded" and done["metrics"]["trades"] > 0, done

    hook_secret = "whsec_" + secrets.token_hex(16)
    hook = Webhook(
        user_id=user.id,
        url="https://hooks.example.com/botyard",
        events=["backtest.finished"],
        secret=hook_secret,
        description="my receiver",
    )
    db.add(hook)
    db.flush()
    db.add(
        WebhookAttempt(webhook_id=hook.id, event="ping", attempt=1, succeeded=True, duration_ms=12)
    )
    note = notify(user.id, "bot.error", {"bot_id": str(run.bot_id), "error": "boom"})
    assert note is not None
    record(
        "bot.created",
        user.id,
        object_type="bot",
        object_id=run.bot_id,
        data={"name": "sma"},
        ip="203.0.113.7",
        user_agent="pytest-agent/1.0",
    )
    db.add(AccountSettings(user_id=user.id, document={"email_digest": "daily"}))
    now = datetime.now(UTC)
    change_hash = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    reset_hash = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    db.add(
        EmailChangeToken(
            user_id=user.id,
            new_email=f"new-{user.username}@example.org",
            token_hash=change_hash,
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    db.add(
        PasswordResetToken(
            user_id=user.id,
            token_hash=reset_hash,
            created_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
    db.commit()
    return Owned(
        user_id=user.id,
        email=user.email,
        username=user.username,
        bot_id=str(run.bot_id),
        run_id=str(run.id),
        backtest_id=backtest_id,
        webhook_id=str(hook.id),
        notification_id=note.id,
        secrets=[hook_secret, change_hash, reset_hash, user.password_hash],
    )
