"""Broken object-level authorization, across every community path at once (issue 15, item 10).

alice owns four live bots: a private one, an unlisted one, a public one a moderator hid, and a
public one (the control). bob, signed in, tries every path to the first three: by id, through
a share link with the wrong scope, on the leaderboards, in his feed, on alice's profile and
through a fork's lineage. He reaches none of them beyond what their visibility allows (an
unlisted bot's card by its id, which is what unlisted means), while the public one works on
every path, so the refusals are not an accident of the set-up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.bots.bots import Bot
from models.people.activities import record
from tests import leaderboard_world as world
from tests.api.community.people import Person

MISSING = {"code": 404, "status": "Not Found", "message": "No bot with that id."}


class World:
    """alice's four bots and the people looking at them."""

    def __init__(self, alice: Person, bob: Person, carol: Person, bots: dict[str, Bot]) -> None:
        self.alice, self.bob, self.carol, self.bots = alice, bob, carol, bots

    def id(self, name: str) -> str:
        return str(self.bots[name].id)


@pytest.fixture
def seen(db: Any, person: Callable[..., Person]) -> World:
    alice, bob, carol = person(), person(), person()
    bots = {
        name: world.ranked(world.bot(alice.user, visibility=visibility), sharpe=sharpe)
        for name, visibility, sharpe in (
            ("private", "private", 3.0),
            ("unlisted", "unlisted", 2.5),
            ("hidden", "public", 2.0),
            ("public", "public", 1.0),
        )
    }
    bots["hidden"].hidden_at = datetime.now(UTC)
    for bot in bots.values():
        record("bot.published", alice.id, object_type="bot", object_id=bot.id)
    db.commit()
    return World(alice, bob, carol, bots)


def call(client: FlaskClient, who: Person, method: str, path: str, body: Any = None) -> Any:
    return client.open(path, method=method, json=body, headers=who.headers)


def error(response: Any) -> dict[str, Any]:
    """The error body without its request id (each response has its own)."""
    return {k: v for k, v in response.json.items() if k != "request_id"}


# Every community path that names a bot by its id, with a body that would otherwise pass.
BOT_PATHS = (
    ("PUT", "/api/v1/bots/{id}/star", None),
    ("DELETE", "/api/v1/bots/{id}/star", None),
    ("GET", "/api/v1/bots/{id}/comments", None),
    ("POST", "/api/v1/bots/{id}/comments", {"body": "nice"}),
    ("POST", "/api/v1/bots/{id}/fork", {}),
    ("POST", "/api/v1/bots/{id}/mirror", {}),
    ("GET", "/api/v1/bots/{id}/sharing", None),
    ("POST", "/api/v1/bots/{id}/sharing", {"scope": "view"}),
)


@pytest.mark.parametrize("name", ["private", "unlisted", "hidden"])
def test_no_community_path_reaches_a_bot_that_is_not_public(
    client: FlaskClient, seen: World, name: str
) -> None:
    for method, path, body in BOT_PATHS:
        response = call(client, seen.bob, method, path.format(id=seen.id(name)), body)
        assert response.status_code == 404, (method, path, response.json)
        assert error(response) == MISSING, (method, path)
    card = call(client, seen.bob, "GET", f"/api/v1/bots/{seen.id(name)}")
    if name == "unlisted":  # seen by whoever has its id: its card, nothing more
        assert card.status_code == 200 and card.json["view"] == "card"
        assert card.json["strategy"] is None and card.json["risk"] is None
    else:
        assert (card.status_code, error(card)) == (404, MISSING)
    # Reports may be made only about what one can see.
    report = call(
        client,
        seen.bob,
        "POST",
        "/api/v1/reports",
        {"target_type": "bot", "target_id": seen.id(name), "reason": "spam"},
    )
    assert report.status_code == (201 if name == "unlisted" else 404), report.json


def test_the_public_bot_works_on_every_path(client: FlaskClient, seen: World) -> None:
    expected = {"GET": 200, "PUT": 200, "DELETE": 200, "POST": 201}
    for method, path, body in BOT_PATHS:
        if "/sharing" in path:
            continue  # the owner's alone, for every bot
        response = call(client, seen.bob, method, path.format(id=seen.id("public")), body)
        assert response.status_code == expected[method], (method, path, response.json)
    sharing = call(client, seen.bob, "GET", f"/api/v1/bots/{seen.id('public')}/sharing")
    assert (sharing.status_code, error(sharing)) == (404, MISSING)


def test_a_link_shows_what_its_scope_allows_and_nothing_leads_back_to_the_bot(
    client: FlaskClient, seen: World
) -> None:
    made = call(
        client,
        seen.alice,
        "POST",
        f"/api/v1/bots/{seen.id('private')}/sharing",
        {"scope": "view_performance"},
    )
    assert made.status_code == 201, made.json
    token = made.json["token"]
    shared = client.get(f"/api/v1/shared/{token}")
    assert shared.status_code == 200 and shared.json["configuration"] is None
    # The wrong scope forks nothing, and the link opens no other path to the bot.
    fork = call(client, seen.bob, "POST", f"/api/v1/shared/{token}/fork", {})
    assert fork.status_code == 403
    star = call(client, seen.bob, "PUT", f"/api/v1/bots/{seen.id('private')}/star")
    assert star.status_code == 404
    # A revoked link stops at once.
    link_id = made.json["id"]
    revoke = f"/api/v1/bots/{seen.id('private')}/sharing/{link_id}"
    assert call(client, seen.alice, "DELETE", revoke).status_code == 204
    assert client.get(f"/api/v1/shared/{token}").status_code == 404


def test_boards_feed_profile_and_lineage_show_only_the_public_bot(
    client: FlaskClient, db: Any, seen: World
) -> None:
    world.run_recompute()
    board = call(client, seen.bob, "GET", "/api/v1/leaderboards?period=all&metric=sharpe")
    assert [e["bot"]["id"] for e in board.json["entries"]] == [seen.id("public")]

    followed = call(client, seen.bob, "PUT", f"/api/v1/users/{seen.alice.username}/follow")
    assert followed.status_code == 200, followed.json
    feed = call(client, seen.bob, "GET", "/api/v1/feed")
    assert feed.status_code == 200, feed.json
    assert {item["bot"]["id"] for item in feed.json["items"]} == {seen.id("public")}

    profile = call(client, seen.bob, "GET", f"/api/v1/users/{seen.alice.username}")
    assert [card["id"] for card in profile.json["public_bots"]] == [seen.id("public")]

    # bob's public bots forked from each of alice's: the lineage names only the public one.
    for name, source in seen.bots.items():
        fork = world.bot(seen.bob.user, visibility="public")
        fork.forked_from_id = source.id
        db.commit()
        for viewer in (seen.bob, seen.carol):
            card = call(client, viewer, "GET", f"/api/v1/bots/{fork.id}").json
            expected = {"id": seen.id(name), "name": source.name} if name == "public" else None
            assert card["forked_from"] == expected, (name, viewer.username)
