"""POST /bots/{id}/mirror: who may mirror what, and when a mirror pauses.

How a mirror trades is tested through the tick job in tests/workers/test_mirror_ticks.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from models.bots.bots import Bot, create_bot
from models.bots.mirrors import BotMirror
from models.bots.runs import current_run, start_bot
from models.people.tables import Notification
from tests.api.community.people import Person
from tests.api.conftest import BOT
from workers.mirrors import pause_orphaned_mirrors

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def author(person: Callable[[], Person]) -> Person:
    return person()


@pytest.fixture
def follower(person: Callable[[], Person]) -> Person:
    return person()


def live_bot(
    db: Any, owner: Person, visibility: str = "public", start: bool = True, name: str = ""
) -> Bot:
    name = name or f"src-{visibility}"
    bot = create_bot(owner.id, {**BOT, "name": name, "visibility": visibility})
    if start:
        start_bot(owner.id, bot.id, limit=10, now=NOW)
    db.commit()
    return bot


def mirror(client: FlaskClient, who: Person, bot_id: Any, **body: Any) -> Any:
    return client.post(f"/api/v1/bots/{bot_id}/mirror", json=body, headers=who.headers)


def mirror_paused_notes(db: Any, who: Person) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(Notification).where(
            Notification.user_id == who.id, Notification.event == "mirror.paused"
        )
    )
    return [row.data for row in rows]


def test_a_mirror_is_a_private_running_bot_of_mine_sized_by_my_capital(
    client: FlaskClient, db: Any, author: Person, follower: Person
) -> None:
    source = live_bot(db, author)
    response = mirror(client, follower, source.id, initial_capital=2_500)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["name"] == "src-public (mirror)"
    assert (body["status"], body["visibility"]) == ("running", "private")
    assert (body["source_bot_id"], body["paused_reason"]) == (str(source.id), None)
    assert (body["symbol"], body["timeframe"], body["strategy"]) == (
        "BTC-USD",
        "1h",
        source.strategy,
    )
    # Capital from the request, costs from my trading defaults; a fresh flat account.
    assert (body["initial_capital"], body["fee"], body["slippage_bps"]) == (2_500.0, 0.001, 5.0)
    assert body["run"]["broker_state"]["cash"] == 2_500.0
    assert body["run"]["broker_state"]["units"] == 0.0
    assert body["run"]["last_candle_ts"] is None
    mine = db.get(Bot, body["id"])
    assert mine.owner_id == follower.id
    assert db.get(BotMirror, mine.id).source_bot_id == source.id
    # Its owner sees it among their bots; it stays private.
    patch = client.patch(
        f"/api/v1/bots/{mine.id}", json={"visibility": "public"}, headers=follower.headers
    )
    assert patch.status_code == 409
    assert patch.json["message"] == "A mirror stays private: it repeats another user's trades."
    renamed = client.patch(
        f"/api/v1/bots/{mine.id}", json={"name": "my copy"}, headers=follower.headers
    )
    assert renamed.status_code == 200 and renamed.json["visibility"] == "private"


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("private", 404, "No bot with that id."),
        ("hidden", 404, "No bot with that id."),
        ("missing", 404, "No bot with that id."),
        ("unlisted", 404, "No bot with that id."),
        ("draft", 409, "Only a running bot can be mirrored; this one is not trading now."),
        ("paused", 409, "Only a running bot can be mirrored; this one is not trading now."),
        ("own", 409, "That is your own bot; fork it to run a copy of it."),
    ],
)
def test_only_someone_elses_public_live_bot_can_be_mirrored(
    client: FlaskClient,
    db: Any,
    author: Person,
    follower: Person,
    case: str,
    status: int,
    message: str,
) -> None:
    visibility = case if case in ("private", "unlisted") else "public"
    source = live_bot(db, author, visibility, start=case != "draft")
    bot_id: Any = source.id
    if case == "hidden":
        source.hidden_at = NOW
    elif case == "paused":
        source.status = "paused"
        current_run(source).status = "paused"  # type: ignore[union-attr]
    elif case == "missing":
        bot_id = "00000000-0000-4000-8000-000000000000"
    db.commit()
    who = author if case == "own" else follower
    response = mirror(client, who, bot_id)
    assert response.status_code == status, response.json
    assert response.json["message"] == message
    assert db.scalar(select(BotMirror.bot_id)) is None
    assert db.scalar(select(Bot.id).where(Bot.owner_id == follower.id)) is None


def test_bad_bodies_are_422(client: FlaskClient, db: Any, author: Person, follower: Person) -> None:
    source = live_bot(db, author)
    for body in (
        {"initial_capital": 0},
        {"initial_capital": 1e300},
        {"fee": 0.5},
        {"name": ""},
        {"name": "x" * 81},
        {"strategy": {"template": "sma_crossover"}},
    ):
        response = mirror(client, follower, source.id, **body)
        assert response.status_code == 422, body
    assert db.scalar(select(BotMirror.bot_id)) is None


@pytest.fixture
def one_mirror_a_minute(app: Flask) -> Iterator[None]:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(rate_limit_fork="1/minute")
    yield
    app.extensions["botyard.settings"] = original


def test_mirrors_share_the_fork_budget(
    client: FlaskClient, db: Any, author: Person, follower: Person, one_mirror_a_minute: None
) -> None:
    source = live_bot(db, author)
    assert mirror(client, follower, source.id).status_code == 201
    second = mirror(client, follower, source.id, name="again")
    assert second.status_code == 429
    assert db.scalar(select(Bot.id).where(Bot.name == "again")) is None


def _mirror_bot(client: FlaskClient, follower: Person, source: Bot) -> Bot:
    response = mirror(client, follower, source.id)
    assert response.status_code == 201, response.json
    return Bot(id=response.json["id"])


def _state(db: Any, bot_id: Any) -> tuple[str, str | None, str | None]:
    db.expire_all()
    bot = db.get(Bot, bot_id)
    run = current_run(bot)
    return bot.status, run.status if run else None, db.get(BotMirror, bot_id).paused_reason


def test_the_mirror_pauses_and_its_owner_is_told_when_the_source_stops(
    client: FlaskClient, db: Any, author: Person, follower: Person
) -> None:
    source = live_bot(db, author)
    mine = _mirror_bot(client, follower, source)
    stopped = client.post(f"/api/v1/bots/{source.id}/stop", headers=author.headers)
    assert stopped.status_code == 200
    assert _state(db, mine.id) == ("paused", "paused", "source_stopped")
    assert mirror_paused_notes(db, follower) == [
        {
            "bot_id": str(mine.id),
            "bot_name": "src-public (mirror)",
            "source_bot_id": str(source.id),
            "reason": "source_stopped",
        }
    ]
    assert mirror_paused_notes(db, author) == []
    # The source's owner sees how their bot was stopped, nothing of the mirror.
    assert stopped.json["status"] == "stopped"


def test_the_mirror_pauses_when_the_source_goes_private(
    client: FlaskClient, db: Any, author: Person, follower: Person
) -> None:
    source = live_bot(db, author)
    mine = _mirror_bot(client, follower, source)
    unchanged = client.patch(
        f"/api/v1/bots/{source.id}", json={"name": "renamed"}, headers=author.headers
    )
    assert unchanged.status_code == 200
    assert _state(db, mine.id) == ("running", "running", None)
    private = client.patch(
        f"/api/v1/bots/{source.id}", json={"visibility": "unlisted"}, headers=author.headers
    )
    assert private.status_code == 200
    assert _state(db, mine.id) == ("paused", "paused", "source_private")
    assert [n["reason"] for n in mirror_paused_notes(db, follower)] == ["source_private"]


def test_the_periodic_pass_pauses_the_mirror_of_a_hidden_source_once(
    client: FlaskClient, db: Any, author: Person, follower: Person
) -> None:
    source = live_bot(db, author)
    mine = _mirror_bot(client, follower, source)
    paused_source = live_bot(db, author, name="other")  # paused by its owner: mirrors wait
    waiting = _mirror_bot(client, follower, paused_source)
    pause = client.post(f"/api/v1/bots/{paused_source.id}/pause", headers=author.headers)
    assert pause.status_code == 200
    db.get(Bot, source.id).hidden_at = NOW  # moderation hid it
    db.commit()
    assert pause_orphaned_mirrors() == {"paused": 1, "failed": 0}
    assert pause_orphaned_mirrors() == {"paused": 0, "failed": 0}
    assert _state(db, mine.id) == ("paused", "paused", "source_hidden")
    assert _state(db, waiting.id) == ("running", "running", None)
    assert [n["reason"] for n in mirror_paused_notes(db, follower)] == ["source_hidden"]
    # The hidden source can no longer be mirrored by anyone.
    assert mirror(client, follower, source.id, name="again").status_code == 404


def test_a_moderator_hiding_the_source_pauses_its_mirror_at_once(
    client: FlaskClient,
    db: Any,
    author: Person,
    follower: Person,
    admin_headers: dict[str, str],
) -> None:
    source = live_bot(db, author)
    mine = _mirror_bot(client, follower, source)
    hidden = client.post(
        f"/api/v1/moderation/bots/{source.id}/hide", json={"reason": "scam"}, headers=admin_headers
    )
    assert hidden.status_code == 200, hidden.json
    assert _state(db, mine.id) == ("paused", "paused", "source_hidden")
    assert [n["reason"] for n in mirror_paused_notes(db, follower)] == ["source_hidden"]
    # The periodic pass finds nothing left to do.
    assert pause_orphaned_mirrors() == {"paused": 0, "failed": 0}
