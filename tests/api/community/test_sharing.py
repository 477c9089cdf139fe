"""Share links: made once with a strong token (only its hash kept), listed and revoked by the
bot's owner alone, opened by anyone holding the token within its scope, one 404 for every
link that does not work, and every view counted."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, text

from api.request_context import loggable_path
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models import db as database
from models.bots.bots import Bot, create_bot
from models.community.tables import ShareLink
from models.identity.users import create_user
from models.market.instruments import sync_instruments
from tests.api.community.people import Person
from tests.api.conftest import BOT
from tests.helpers import PASSWORD, bearer

WAIT_S = 60
CONFIG_KEYS = {
    "symbol",
    "timeframe",
    "strategy",
    "risk",
    "initial_capital",
    "fee",
    "slippage_bps",
}


@pytest.fixture
def alice(person: Callable[[], Person]) -> Person:
    return person()


@pytest.fixture
def bob(person: Callable[[], Person]) -> Person:
    return person()


def sharing(bot_id: Any) -> str:
    return f"/api/v1/bots/{bot_id}/sharing"


def make_bot(db: Any, owner: Person, **fields: Any) -> Bot:
    bot = create_bot(owner.id, {**BOT, **fields})
    db.commit()
    return bot


def make_link(client: FlaskClient, owner: Person, bot: Bot, **body: Any) -> dict[str, Any]:
    response = client.post(sharing(bot.id), json={"scope": "view", **body}, headers=owner.headers)
    assert response.status_code == 201, response.json
    return dict(response.json or {})


def without_request_id(body: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(body).items() if key != "request_id"}


def test_a_link_shows_its_token_once_and_only_the_hash_is_stored(
    app: Flask, client: FlaskClient, db: Any, alice: Person
) -> None:
    bot = make_bot(db, alice)
    first = make_link(client, alice, bot, label="for Bob")
    second = make_link(client, alice, bot, scope="view_performance")
    token = first["token"]
    # token_urlsafe(32): 256 bits as 43 URL-safe characters; a fresh one every time.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert token != second["token"]
    frontend = app.extensions["botyard.settings"].frontend_url
    assert first["url"] == f"{frontend}/shared/{token}"
    assert first["api_path"] == f"/api/v1/shared/{token}"
    assert first["scope"] == "view" and first["label"] == "for Bob"
    assert first["status"] == "active" and first["views"] == 0
    assert first["expires_at"] is None and first["revoked_at"] is None

    row = db.get(ShareLink, uuid.UUID(first["id"]))
    assert row.token_hash == hashlib.sha256(token.encode()).digest()
    stored = db.execute(
        text("SELECT row_to_json(s)::text FROM share_links s WHERE id = :id"), {"id": row.id}
    ).scalar_one()
    assert token not in stored and token.encode().hex() not in stored

    listed = client.get(sharing(bot.id), headers=alice.headers).json
    assert [item["id"] for item in listed["items"]] == [second["id"], first["id"]]
    assert token not in json.dumps(listed)
    assert set(listed["items"][0]) == {
        "id",
        "scope",
        "label",
        "status",
        "expires_at",
        "revoked_at",
        "views",
        "last_viewed_at",
        "created_at",
    }


def test_the_view_scope_adds_the_configuration_and_view_performance_does_not(
    client: FlaskClient, db: Any, alice: Person
) -> None:
    # A private bot: sharing it with a friend is the point of a link.
    bot = make_bot(db, alice, description="mine")
    assert bot.visibility == "private"
    full = make_link(client, alice, bot, scope="view")
    perf = make_link(client, alice, bot, scope="view_performance")

    shown = client.get(full["api_path"])  # no token: the link is the credential
    assert shown.status_code == 200, shown.json
    assert shown.headers["Cache-Control"] == "no-store"
    body = shown.json
    assert body["scope"] == "view" and body["expires_at"] is None
    assert body["bot"]["id"] == str(bot.id) and body["bot"]["visibility"] == "private"
    assert body["bot"]["owner"]["username"] == alice.username
    assert body["configuration"] == {
        "symbol": "BTC-USD",
        "timeframe": "1h",
        "strategy": bot.strategy,
        "risk": bot.risk,
        "initial_capital": 10_000.0,
        "fee": 0.001,
        "slippage_bps": 2.0,
    }
    assert alice.email not in json.dumps(body)

    only_perf = client.get(perf["api_path"]).json
    assert only_perf["scope"] == "view_performance"
    assert only_perf["configuration"] is None
    assert only_perf["bot"] == body["bot"]
    # The card is the owner's own card of the bot: the same performance, nothing more.
    mine = client.get(f"/api/v1/bots/{bot.id}", headers=alice.headers).json
    assert {key: mine[key] for key in body["bot"]} == body["bot"]
    assert not CONFIG_KEYS & set(only_perf["bot"]) - {"symbol", "timeframe"}


def test_unknown_expired_revoked_hidden_and_disabled_links_answer_one_404(
    client: FlaskClient, db: Any, alice: Person, person: Callable[[], Person]
) -> None:
    bot = make_bot(db, alice)
    expired = make_link(client, alice, bot)
    revoked = make_link(client, alice, bot)
    db.execute(
        text("UPDATE share_links SET expires_at = :past WHERE id = :id"),
        {"past": datetime.now(UTC) - timedelta(minutes=1), "id": expired["id"]},
    )
    db.commit()
    assert (
        client.delete(f"{sharing(bot.id)}/{revoked['id']}", headers=alice.headers).status_code
        == 204
    )

    hidden_bot = make_bot(db, alice, name="hidden", visibility="public")
    hidden = make_link(client, alice, hidden_bot)
    hidden_bot.hidden_at = datetime.now(UTC)
    carol = person()
    carols_bot = make_bot(db, carol, name="carol's")
    disabled = make_link(client, carol, carols_bot)
    carol.user.is_active, carol.user.disabled_at = False, datetime.now(UTC)
    deleted_bot = make_bot(db, alice, name="deleted")
    deleted = make_link(client, alice, deleted_bot)
    db.delete(deleted_bot)
    db.commit()

    paths = [
        "/api/v1/shared/" + "A" * 43,
        "/api/v1/shared/x",
        "/api/v1/shared/" + "é" * 300,
        expired["api_path"],
        revoked["api_path"],
        hidden["api_path"],
        disabled["api_path"],
        deleted["api_path"],
    ]
    answers = [client.get(path) for path in paths]
    assert [answer.status_code for answer in answers] == [404] * len(paths)
    bodies = [without_request_id(answer.json) for answer in answers]
    assert bodies == [
        {"code": 404, "status": "Not Found", "message": "No shared bot at this link."}
    ] * len(paths)
    # A failed view counts nothing.
    assert {row.views for row in db.scalars(select(ShareLink))} == {0}
    # The owner still sees the expired and revoked links, marked so.
    listed = client.get(sharing(bot.id), headers=alice.headers).json["items"]
    assert {item["id"]: item["status"] for item in listed} == {
        expired["id"]: "expired",
        revoked["id"]: "revoked",
    }


def test_revoking_works_at_once_and_again_changes_nothing(
    client: FlaskClient, db: Any, alice: Person
) -> None:
    bot = make_bot(db, alice)
    link = make_link(client, alice, bot)
    other = make_link(client, alice, bot)
    assert client.get(link["api_path"]).status_code == 200
    url = f"{sharing(bot.id)}/{link['id']}"
    assert client.delete(url, headers=alice.headers).status_code == 204
    assert client.get(link["api_path"]).status_code == 404
    assert client.get(other["api_path"]).status_code == 200  # only that link
    first_revoked_at = db.get(ShareLink, uuid.UUID(link["id"])).revoked_at
    assert first_revoked_at is not None
    assert client.delete(url, headers=alice.headers).status_code == 204
    db.expire_all()
    assert db.get(ShareLink, uuid.UUID(link["id"])).revoked_at == first_revoked_at
    # Nor does a revoked link fork.
    assert (
        client.post(f"{link['api_path']}/fork", json={}, headers=alice.headers).status_code == 404
    )


def test_views_are_counted_per_link(client: FlaskClient, db: Any, alice: Person) -> None:
    bot = make_bot(db, alice)
    one = make_link(client, alice, bot)
    two = make_link(client, alice, bot, scope="view_performance")
    for _ in range(3):
        assert client.get(one["api_path"]).status_code == 200
    assert client.get(two["api_path"]).status_code == 200
    listed = {
        item["id"]: item
        for item in client.get(sharing(bot.id), headers=alice.headers).json["items"]
    }
    assert listed[one["id"]]["views"] == 3 and listed[two["id"]]["views"] == 1
    assert listed[one["id"]]["last_viewed_at"] is not None


def test_another_user_can_neither_list_make_nor_revoke_links_of_my_bot(
    client: FlaskClient, db: Any, alice: Person, bob: Person
) -> None:
    private = make_bot(db, alice)
    public = make_bot(db, alice, name="public", visibility="public")
    link = make_link(client, alice, public)
    missing = {"code": 404, "status": "Not Found", "message": "No bot with that id."}
    for bot in (private, public):
        answers = [
            client.get(sharing(bot.id), headers=bob.headers),
            client.post(sharing(bot.id), json={"scope": "view"}, headers=bob.headers),
            client.delete(f"{sharing(bot.id)}/{link['id']}", headers=bob.headers),
        ]
        assert [without_request_id(a.json) for a in answers] == [missing] * 3
    # A link id under another bot of mine is no link of that bot.
    wrong = client.delete(f"{sharing(private.id)}/{link['id']}", headers=alice.headers)
    assert wrong.status_code == 404
    assert client.get(link["api_path"]).status_code == 200
    assert db.scalar(select(ShareLink.revoked_at).where(ShareLink.id == link["id"])) is None
    assert client.get(sharing(public.id)).status_code == 401


def test_scope_expiry_and_label_are_checked(client: FlaskClient, db: Any, alice: Person) -> None:
    bot = make_bot(db, alice)
    now = datetime.now(UTC)
    refused = {
        "scope": {"scope": "edit"},
        "expires_at": {"scope": "view", "expires_at": (now - timedelta(hours=1)).isoformat()},
        "label": {"scope": "view", "label": "x" * 81},
        "token": {"scope": "view", "token": "mine"},
    }
    for field, body in refused.items():
        answer = client.post(sharing(bot.id), json=body, headers=alice.headers)
        assert answer.status_code == 422, (field, answer.json)
        assert field in answer.json["errors"]["json"]
    too_far = client.post(
        sharing(bot.id),
        json={"scope": "view", "expires_at": (now + timedelta(days=366)).isoformat()},
        headers=alice.headers,
    )
    assert too_far.status_code == 422
    assert "365 days" in too_far.json["errors"]["json"]["expires_at"][0]
    missing_scope = client.post(sharing(bot.id), json={}, headers=alice.headers)
    assert missing_scope.status_code == 422 and "scope" in missing_scope.json["errors"]["json"]
    later = now + timedelta(days=30)
    made = make_link(client, alice, bot, expires_at=later.isoformat())
    assert datetime.fromisoformat(made["expires_at"]) == later
    assert client.get(made["api_path"]).json["expires_at"] == made["expires_at"]
    assert db.scalar(select(ShareLink.id).where(ShareLink.bot_id == bot.id)) == uuid.UUID(
        made["id"]
    )


def test_links_are_cursor_paged_and_capped_per_bot(
    client: FlaskClient, db: Any, alice: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = make_bot(db, alice)
    made = [make_link(client, alice, bot)["id"] for _ in range(3)]
    first = client.get(sharing(bot.id), query_string={"limit": 2}, headers=alice.headers).json
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(
        sharing(bot.id),
        query_string={"limit": 2, "cursor": first["next_cursor"]},
        headers=alice.headers,
    ).json
    assert rest["next_cursor"] is None
    assert sorted(i["id"] for i in first["items"] + rest["items"]) == sorted(made)
    bad = client.get(sharing(bot.id), query_string={"cursor": "nope"}, headers=alice.headers)
    assert bad.status_code == 422 and "cursor" in bad.json["errors"]["query"]
    huge = client.get(sharing(bot.id), query_string={"limit": 1000}, headers=alice.headers)
    assert huge.status_code == 422

    monkeypatch.setattr("models.community.sharing.MAX_LIVE_LINKS", 3)
    full = client.post(sharing(bot.id), json={"scope": "view"}, headers=alice.headers)
    assert full.status_code == 409
    client.delete(f"{sharing(bot.id)}/{made[0]}", headers=alice.headers)
    assert (
        client.post(sharing(bot.id), json={"scope": "view"}, headers=alice.headers).status_code
        == 201
    )


def test_making_links_and_viewing_them_are_rate_limited(
    app: Flask, client: FlaskClient, db: Any, alice: Person, redis: Redis
) -> None:
    bot = make_bot(db, alice)
    settings = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = settings.replace(
        rate_limit_share_link="2/hour", rate_limit_shared_view="2/minute"
    )
    try:
        made = [
            client.post(sharing(bot.id), json={"scope": "view"}, headers=alice.headers)
            for _ in range(3)
        ]
        path = made[0].json["api_path"]
        viewed = [client.get(path).status_code for _ in range(3)]
    finally:
        app.extensions["botyard.settings"] = settings
    assert [answer.status_code for answer in made] == [201, 201, 429]
    assert made[2].headers.get("Retry-After")
    assert viewed == [200, 200, 429]
    assert db.scalar(select(ShareLink.views).where(ShareLink.id == made[0].json["id"])) == 2


def test_the_access_log_never_keeps_a_token() -> None:
    assert loggable_path("/api/v1/shared/abc-DEF_1") == "/api/v1/shared/<token>"
    assert loggable_path("/api/v1/shared/abc/fork") == "/api/v1/shared/<token>/fork"
    assert loggable_path("/api/v1/bots/1/sharing") == "/api/v1/bots/1/sharing"


def test_concurrent_views_are_all_counted(app: Flask, committed: list[uuid.UUID]) -> None:
    with app.app_context():
        sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
        name = f"share_{uuid.uuid4().hex[:8]}"
        user = create_user(f"{name}@example.com", name, PASSWORD, ("user",))
        committed.append(user.id)
        bot = create_bot(user.id, BOT)
        database.session.commit()
        bot_id = bot.id
        database.session.remove()
    threads, per_thread = 8, 5
    settings = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = settings.replace(rate_limit_shared_view="1000/minute")
    try:
        owner = app.test_client()
        login = owner.post("/api/v1/auth/login", json={"login": user.email, "password": PASSWORD})
        headers = bearer(login.json["access_token"])
        link = owner.post(sharing(bot_id), json={"scope": "view"}, headers=headers).json
        start = threading.Barrier(threads)
        codes: list[int] = []
        lock = threading.Lock()

        def view() -> None:
            client = app.test_client()
            start.wait(WAIT_S)
            for _ in range(per_thread):
                code = client.get(link["api_path"]).status_code
                with lock:
                    codes.append(code)

        workers = [threading.Thread(target=view) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT_S)
        listed = owner.get(sharing(bot_id), headers=headers).json["items"]
    finally:
        app.extensions["botyard.settings"] = settings
    assert codes == [200] * (threads * per_thread)
    assert listed[0]["views"] == threads * per_thread
