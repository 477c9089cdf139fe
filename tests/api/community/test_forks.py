"""Forks: a public bot (or one of mine, or one shared with me by a `view` link) becomes my
draft with its configuration and lineage, and nothing else of it; its owner is told once,
unless a block says otherwise; what may not be seen may not be forked."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select

from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun
from models.community.tables import Block, ShareLink
from models.people.tables import Activity, Notification
from tests.api.community.people import Person
from tests.api.conftest import BOT

MISSING = {"code": 404, "status": "Not Found", "message": "No bot with that id."}
LINK_GONE = {"code": 404, "status": "Not Found", "message": "No shared bot at this link."}
COPIED = ("symbol", "timeframe", "strategy", "risk", "initial_capital", "fee", "slippage_bps")


@pytest.fixture
def alice(person: Callable[[], Person]) -> Person:
    return person()


@pytest.fixture
def bob(person: Callable[[], Person]) -> Person:
    return person()


def make_bot(db: Any, owner: Person, **fields: Any) -> Bot:
    bot = create_bot(owner.id, {**BOT, **fields})
    db.commit()
    return bot


def fork(client: FlaskClient, who: Person, bot_id: Any, **body: Any) -> Any:
    return client.post(f"/api/v1/bots/{bot_id}/fork", json=body, headers=who.headers)


def fork_shared(client: FlaskClient, who: Person, token: str, **body: Any) -> Any:
    return client.post(f"/api/v1/shared/{token}/fork", json=body, headers=who.headers)


def share(client: FlaskClient, owner: Person, bot: Bot, scope: str = "view") -> str:
    made = client.post(
        f"/api/v1/bots/{bot.id}/sharing", json={"scope": scope}, headers=owner.headers
    )
    assert made.status_code == 201, made.json
    return str(made.json["token"])


def forked_notes(db: Any, user: Person) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification).where(
                Notification.user_id == user.id, Notification.event == "bot.forked"
            )
        )
    )


def body_of(response: Any) -> dict[str, Any]:
    return {key: value for key, value in dict(response.json).items() if key != "request_id"}


def test_a_public_bot_forks_into_my_draft_with_its_configuration_and_nothing_else(
    client: FlaskClient, db: Any, ticked_run: BotRun, live_owner: Any, person: Any
) -> None:
    source = db.get(Bot, ticked_run.bot_id)
    source.visibility, source.description = "public", "crosses"
    db.commit()
    owner = Person(live_owner, live_owner.headers)
    share(client, owner, source)
    bob = person()
    assert db.scalar(select(func.count()).select_from(BotRun)) == 1

    made = fork(client, bob, source.id)
    assert made.status_code == 201, made.json
    copy = made.json
    assert copy["status"] == "draft" and copy["name"] == source.name
    assert copy["visibility"] == "private"  # bob's default, not the source's
    assert copy["description"] == "crosses" and copy["schedule"] is None
    for key in COPIED:
        assert copy[key] == (source.symbol if key == "symbol" else getattr(source, key)), key
    fork_id = uuid.UUID(copy["id"])
    row = db.get(Bot, fork_id)
    assert row.owner_id == bob.id and row.forked_from_id == source.id
    # No run (so no trades or equity), no share link of its own.
    assert db.scalar(select(func.count()).select_from(BotRun).where(BotRun.bot_id == fork_id)) == 0
    assert (
        db.scalar(select(func.count()).select_from(ShareLink).where(ShareLink.bot_id == fork_id))
        == 0
    )
    assert client.get(f"/api/v1/bots/{fork_id}/trades", headers=bob.headers).json["total"] == 0
    # Lineage on the fork's own page, for its owner.
    mine = client.get(f"/api/v1/bots/{fork_id}", headers=bob.headers).json
    assert mine["view"] == "owner"
    assert mine["forked_from"] == {"id": str(source.id), "name": source.name}

    # The owner is told once; the feed's activity names the new bot and its source.
    [note] = forked_notes(db, owner)
    assert note.data == {
        "bot_id": str(source.id),
        "bot_name": source.name,
        "fork_id": str(fork_id),
        "by": bob.username,
    }
    [activity] = db.scalars(select(Activity).where(Activity.verb == "bot.forked"))
    assert activity.actor_id == bob.id
    assert (activity.object_type, activity.object_id) == ("bot", str(fork_id))
    assert activity.data == {
        "source_bot_id": str(source.id),
        "source_name": source.name,
        "via": "public",
    }


def test_fork_names_stay_unique_per_owner(
    client: FlaskClient, db: Any, alice: Person, bob: Person
) -> None:
    source = make_bot(db, alice, name="trend", visibility="public")
    names = [fork(client, bob, source.id).json["name"] for _ in range(3)]
    assert names == ["trend", "trend (fork)", "trend (fork 2)"]
    taken = fork(client, bob, source.id, name="trend")
    assert taken.status_code == 409
    assert fork(client, bob, source.id, name="mine").json["name"] == "mine"
    # My own bot forks too (a copy of mine; nobody is notified), always under a new name.
    own = fork(client, alice, source.id)
    assert own.status_code == 201 and own.json["name"] == "trend (fork)"
    long = make_bot(db, alice, name="x" * 80, visibility="public")
    assert fork(client, alice, long.id).json["name"] == "x" * 73 + " (fork)"
    assert len(forked_notes(db, alice)) == 4  # bob's four forks, none of alice's own
    for bad in ({"name": ""}, {"name": "y" * 81}, {"visibility": "public"}):
        assert fork(client, bob, source.id, **bad).status_code == 422


def test_what_i_may_not_see_or_is_not_public_cannot_be_forked(
    client: FlaskClient, db: Any, alice: Person, bob: Person, person: Any
) -> None:
    private = make_bot(db, alice, name="private")
    unlisted = make_bot(db, alice, name="unlisted", visibility="unlisted")
    hidden = make_bot(db, alice, name="hidden", visibility="public")
    hidden.hidden_at = datetime.now(UTC)
    carol = person()
    carols = make_bot(db, carol, name="carol's", visibility="public")
    carol.user.is_active, carol.user.disabled_at = False, datetime.now(UTC)
    db.commit()
    # Bob may read the unlisted bot's card, but a fork would copy its configuration.
    assert client.get(f"/api/v1/bots/{unlisted.id}", headers=bob.headers).status_code == 200
    for bot_id in (private.id, unlisted.id, hidden.id, carols.id, uuid.uuid4()):
        refused = fork(client, bob, bot_id)
        assert refused.status_code == 404 and body_of(refused) == MISSING
    # The owner cannot copy a bot moderation hid into a visible one.
    assert fork(client, alice, hidden.id).status_code == 409
    assert db.scalar(select(func.count()).select_from(Bot).where(Bot.owner_id == bob.id)) == 0
    assert forked_notes(db, alice) == []


def test_a_view_link_forks_a_private_bot_without_revealing_it(
    client: FlaskClient, db: Any, alice: Person, bob: Person, person: Any
) -> None:
    private = make_bot(db, alice, name="secret sauce")
    performance_only = share(client, alice, private, "view_performance")
    refused = fork_shared(client, bob, performance_only)
    assert refused.status_code == 403
    token = share(client, alice, private, "view")
    client.patch(
        "/api/v1/me/settings", json={"default_bot_visibility": "public"}, headers=bob.headers
    )

    made = fork_shared(client, bob, token, name="copied")
    assert made.status_code == 201, made.json
    fork_id = made.json["id"]
    assert made.json["visibility"] == "public" and made.json["strategy"] == private.strategy
    assert db.get(Bot, uuid.UUID(fork_id)).forked_from_id == private.id
    # Forking reads the link without counting a view.
    assert db.scalar(select(ShareLink.views).where(ShareLink.bot_id == private.id).limit(1)) == 0
    # The lineage names the private source to nobody but its owner.
    carol = person()
    assert client.get(f"/api/v1/bots/{fork_id}", headers=bob.headers).json["forked_from"] is None
    assert client.get(f"/api/v1/bots/{fork_id}", headers=carol.headers).json["forked_from"] is None
    seen_by_alice = client.get(f"/api/v1/bots/{fork_id}", headers=alice.headers).json
    assert seen_by_alice["forked_from"] == {"id": str(private.id), "name": "secret sauce"}
    [activity] = db.scalars(select(Activity).where(Activity.verb == "bot.forked"))
    assert activity.data["via"] == "share_link"
    # Revoked: the link forks no more, with the link's one 404.
    link_id = db.scalar(select(ShareLink.id).where(ShareLink.scope == "view"))
    client.delete(f"/api/v1/bots/{private.id}/sharing/{link_id}", headers=alice.headers)
    gone = fork_shared(client, bob, token)
    assert gone.status_code == 404 and body_of(gone) == LINK_GONE
    assert body_of(fork_shared(client, bob, "nope")) == LINK_GONE


def test_lineage_follows_the_source_s_visibility(
    client: FlaskClient, db: Any, alice: Person, bob: Person, person: Any
) -> None:
    source = make_bot(db, alice, name="src", visibility="public")
    client.patch(
        "/api/v1/me/settings", json={"default_bot_visibility": "public"}, headers=bob.headers
    )
    fork_id = fork(client, bob, source.id).json["id"]
    carol = person()
    url = f"/api/v1/bots/{fork_id}"
    assert client.get(url, headers=carol.headers).json["forked_from"]["id"] == str(source.id)
    source.visibility = "unlisted"
    db.commit()
    assert client.get(url, headers=carol.headers).json["forked_from"] is None
    assert client.get(url, headers=bob.headers).json["forked_from"] is None
    assert client.get(url, headers=alice.headers).json["forked_from"]["id"] == str(source.id)
    # A bot that is no fork has none.
    assert (
        client.get(f"/api/v1/bots/{source.id}", headers=alice.headers).json["forked_from"] is None
    )


def test_blocks_hold(client: FlaskClient, db: Any, alice: Person, bob: Person) -> None:
    source = make_bot(db, alice, name="src", visibility="public")
    token = share(client, alice, source)
    db.add(Block(blocker_id=alice.id, blocked_id=bob.id))
    db.commit()
    # Blocked by the owner: no fork, by id or by link, and no notification.
    assert body_of(fork(client, bob, source.id)) == MISSING
    assert body_of(fork_shared(client, bob, token)) == LINK_GONE
    assert client.get(f"/api/v1/shared/{token}").status_code == 200  # the link still shows
    db.execute(Block.__table__.delete())
    # Bob blocked alice: he may fork her public bot, and she hears nothing from him.
    db.add(Block(blocker_id=bob.id, blocked_id=alice.id))
    db.commit()
    assert fork(client, bob, source.id).status_code == 201
    assert forked_notes(db, alice) == []


def test_forks_are_rate_limited_across_both_routes(
    app: Flask, client: FlaskClient, db: Any, alice: Person, bob: Person, redis: Redis
) -> None:
    source = make_bot(db, alice, name="src", visibility="public")
    token = share(client, alice, source)
    settings = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = settings.replace(rate_limit_fork="2/minute")
    try:
        codes = [
            fork(client, bob, source.id).status_code,
            fork_shared(client, bob, token).status_code,
            fork(client, bob, source.id).status_code,
        ]
    finally:
        app.extensions["botyard.settings"] = settings
    assert codes == [201, 201, 429]
    assert db.scalar(select(func.count()).select_from(Bot).where(Bot.owner_id == bob.id)) == 2


def test_a_name_taken_meanwhile_moves_on_to_the_next(
    client: FlaskClient, db: Any, alice: Person, bob: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_bot(db, alice, name="trend", visibility="public")
    make_bot(db, bob, name="trend")
    # As if another request took the name between the choice and the insert.
    picks = iter(["trend", "trend (fork)"])
    monkeypatch.setattr("models.community.forks.free_fork_name", lambda *_: next(picks))
    made = fork(client, bob, source.id)
    assert made.status_code == 201 and made.json["name"] == "trend (fork)"
