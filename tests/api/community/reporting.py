"""Building blocks of the report and moderation tests: people, bots, comments, audit reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from models.bots.bots import Bot, create_bot
from models.community.tables import Comment
from models.db import session as db
from models.people.tables import AccountSettings, Notification
from tests.api.community.people import Person
from tests.api.conftest import BOT

REPORTS = "/api/v1/reports"
QUEUE = "/api/v1/moderation/reports"
AUDIT = "/api/v1/admin/audit"


def bot_of(owner: Person, name: str, visibility: str = "public") -> Bot:
    """A draft bot of ``owner`` (committed)."""
    made = create_bot(owner.id, {**BOT, "name": name, "visibility": visibility})
    db.commit()
    return made


def comment_on(bot: Bot, author: Person, body: str = "nice bot", **fields: Any) -> Comment:
    """A comment row on ``bot`` (the comments API is another area's; the row is enough here)."""
    comment = Comment(id=uuid.uuid4(), bot_id=bot.id, author_id=author.id, body=body, **fields)
    db.add(comment)
    db.commit()
    return comment


def make_private(person: Person) -> None:
    """Turn ``person``'s profile private."""
    db.merge(AccountSettings(user_id=person.id, document={"profile_visibility": "private"}))
    db.commit()


def report(
    client: FlaskClient, who: Person, target_type: str, target_id: Any, reason: str = "spam"
) -> Any:
    """POST a report; returns the response."""
    body = {"target_type": target_type, "target_id": str(target_id), "reason": reason}
    return client.post(REPORTS, json=body, headers=who.headers)


def hidden_notices(user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The data of every ``content.hidden`` notification ``user_id`` got."""
    rows = db.scalars(
        sa.select(Notification.data)
        .where(Notification.user_id == user_id, Notification.event == "content.hidden")
        .order_by(Notification.created_at)
    )
    return list(rows)


def audit(client: FlaskClient, admin: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    """Audit rows (oldest first) of the moderation verbs, as the admin listing shows them."""
    response = client.get(AUDIT, query_string={"verb": "moderation.", **query}, headers=admin)
    assert response.status_code == 200, response.json
    return list(reversed(response.json["rows"]))


def set_created(report_id: str, when: datetime) -> None:
    """Backdate a report (the queue is ordered by creation)."""
    db.execute(
        sa.text("UPDATE reports SET created_at = :t WHERE id = :id"),
        {"t": when, "id": report_id},
    )
    db.commit()


@contextmanager
def limits(app: Flask, **changes: str) -> Iterator[None]:
    """Run with some settings changed (the rate limits are read per request)."""
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(**changes)
    try:
        yield
    finally:
        app.extensions["botyard.settings"] = original


NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
