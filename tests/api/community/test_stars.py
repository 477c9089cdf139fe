"""Stars (issue 15, item 3): idempotent, counted from rows, only on bots the caller may see.

Also the community fields of the bot card: star, fork and mirror counts, ``starred_by_me``
and a fork's lineage, which never names a source the viewer may not be shown.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from models import db as database
from models.bots.bots import Bot, create_bot
from models.bots.mirrors import BotMirror
from models.community.tables import BotStar
from models.identity.users import create_user, disable_user
from tests.api.conftest import BOT
from tests.helpers import PASSWORD, bearer

BOTS = "/api/v1/bots"
MY_STARS = "/api/v1/me/stars"


def star_url(bot_id: Any) -> str:
    return f"{BOTS}/{bot_id}/star"


@pytest.fixture
def new_bot(db: Any, instruments: None) -> Callable[..., Bot]:
    """Make a committed bot of ``owner`` with the given visibility."""
    counter = iter(range(1, 1000))

    def make(owner: Any, visibility: str = "public", **fields: Any) -> Bot:
        bot = create_bot(owner.id, {**BOT, "name": f"bot{next(counter)}", **fields})
        bot.visibility = visibility
        db.commit()
        return bot

    return make


def star_rows(db: Any, bot_id: uuid.UUID) -> int:
    return int(db.scalar(select(func.count()).select_from(BotStar).where(BotStar.bot_id == bot_id)))


def test_starring_is_idempotent_and_the_count_is_the_rows(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, fan, other = person(), person(), person()
    bot = new_bot(owner)
    for _ in range(2):
        response = client.put(star_url(bot.id), headers=fan.headers)
        assert response.status_code == 200, response.json
        assert response.json == {"bot_id": str(bot.id), "starred": True, "stars": 1}
    assert star_rows(db, bot.id) == 1
    # The owner may star their own bot; the count is everyone's, `starred` is the caller's.
    assert client.put(star_url(bot.id), headers=owner.headers).json["stars"] == 2
    unstarred = client.delete(star_url(bot.id), headers=other.headers)
    assert unstarred.status_code == 200
    assert unstarred.json == {"bot_id": str(bot.id), "starred": False, "stars": 2}
    for _ in range(2):
        response = client.delete(star_url(bot.id), headers=fan.headers)
        assert response.status_code == 200
        assert response.json == {"bot_id": str(bot.id), "starred": False, "stars": 1}
    assert star_rows(db, bot.id) == 1
    assert client.put(star_url(bot.id)).status_code == 401


def test_every_star_path_is_404_for_a_bot_the_caller_may_not_see(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, stranger = person(), person()
    private = new_bot(owner, "private")
    hidden = new_bot(owner)
    hidden.hidden_at = datetime.now(UTC)
    gone_owner = person()
    of_disabled = new_bot(gone_owner)
    disable_user(gone_owner, datetime.now(UTC))
    db.commit()
    missing = client.put(star_url(uuid.uuid4()), headers=stranger.headers)
    assert missing.status_code == 404
    for bot in (private, hidden, of_disabled):
        for call in (client.put, client.delete):
            response = call(star_url(bot.id), headers=stranger.headers)
            assert response.status_code == 404, (bot.name, response.json)
            assert response.json["message"] == missing.json["message"]
        assert star_rows(db, bot.id) == 0
    # Its owner still stars their own private or hidden bot.
    assert client.put(star_url(private.id), headers=owner.headers).json["starred"] is True
    assert client.put(star_url(hidden.id), headers=owner.headers).json["starred"] is True


def test_my_stars_are_cards_newest_first_paged_by_cursor(
    client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, fan = person(), person()
    bots = [new_bot(owner, "public") for _ in range(3)]
    for bot in bots:
        assert client.put(star_url(bot.id), headers=fan.headers).status_code == 200
    # An unlisted bot is seen by whoever has its id, but only its owner may star it.
    unlisted = new_bot(owner, "unlisted")
    assert client.put(star_url(unlisted.id), headers=fan.headers).status_code == 404
    assert client.get(f"/api/v1/bots/{unlisted.id}", headers=fan.headers).status_code == 200
    first = client.get(MY_STARS, query_string={"limit": 2}, headers=fan.headers)
    assert first.status_code == 200, first.json
    assert [item["bot"]["id"] for item in first.json["items"]] == [str(bots[2].id), str(bots[1].id)]
    card = first.json["items"][0]["bot"]
    assert (card["stars"], card["starred_by_me"], card["owner"]["username"]) == (
        1,
        True,
        owner.username,
    )
    assert "strategy" not in card and first.json["items"][0]["starred_at"]
    cursor = first.json["next_cursor"]
    assert cursor
    second = client.get(MY_STARS, query_string={"limit": 2, "cursor": cursor}, headers=fan.headers)
    assert [item["bot"]["id"] for item in second.json["items"]] == [str(bots[0].id)]
    assert second.json["next_cursor"] is None
    # Someone else's stars are not mine.
    assert client.get(MY_STARS, headers=owner.headers).json == {"items": [], "next_cursor": None}
    for bad in ("x", "1.zz", "99999999999999999.abc", "-5." + uuid.uuid4().hex):
        response = client.get(MY_STARS, query_string={"cursor": bad}, headers=fan.headers)
        assert response.status_code == 422, bad
    assert client.get(MY_STARS, query_string={"limit": 101}, headers=fan.headers).status_code == 422


def test_my_stars_leave_out_bots_i_may_no_longer_see(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, fan = person(), person()
    made_private, hidden, kept = new_bot(owner), new_bot(owner), new_bot(owner)
    gone_owner = person()
    of_disabled = new_bot(gone_owner)
    mine = new_bot(fan, "private")
    for bot in (made_private, hidden, kept, of_disabled, mine):
        assert client.put(star_url(bot.id), headers=fan.headers).status_code == 200
    made_private.visibility = "private"
    hidden.hidden_at = datetime.now(UTC)
    disable_user(gone_owner, datetime.now(UTC))
    db.commit()
    body = client.get(MY_STARS, headers=fan.headers).json
    assert [item["bot"]["id"] for item in body["items"]] == [str(mine.id), str(kept.id)]
    text_body = str(body)
    for gone in (made_private, hidden, of_disabled):
        assert str(gone.id) not in text_body
    # Shown again once visible again: the star was kept, only not shown.
    made_private.visibility = "public"
    db.commit()
    ids = [item["bot"]["id"] for item in client.get(MY_STARS, headers=fan.headers).json["items"]]
    assert str(made_private.id) in ids


def test_cards_count_stars_forks_and_mirrors_and_know_my_star(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, fan, forker, viewer = person(), person(), person(), person()
    bot = new_bot(owner)
    for user in (fan, forker):
        client.put(star_url(bot.id), headers=user.headers)
    private_fork = new_bot(forker, "private", description="fork")
    private_fork.forked_from_id = bot.id
    public_fork = new_bot(fan)
    public_fork.forked_from_id = bot.id
    mirror = new_bot(viewer, "private")
    db.add(BotMirror(bot_id=mirror.id, source_bot_id=bot.id))
    db.commit()

    def card(user: Any, bot_id: uuid.UUID = bot.id) -> dict[str, Any]:
        response = client.get(f"{BOTS}/{bot_id}", headers=user.headers)
        assert response.status_code == 200, response.json
        return dict(response.json)

    seen = card(fan)
    assert (seen["stars"], seen["forks"], seen["mirrors"], seen["starred_by_me"]) == (2, 2, 1, True)
    assert card(viewer)["starred_by_me"] is False
    assert card(owner)["starred_by_me"] is False and card(owner)["stars"] == 2
    assert card(fan)["forked_from"] is None  # not a fork
    # Forks are the rows that still exist.
    db.delete(private_fork)
    db.commit()
    assert card(fan)["forks"] == 1
    client.delete(star_url(bot.id), headers=fan.headers)
    after = card(fan)
    assert (after["stars"], after["starred_by_me"]) == (1, False)


def test_lineage_names_the_source_only_to_whom_it_may_be_shown(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    author, forker, stranger = person(), person(), person()
    source = new_bot(author, name="secret-sauce")
    fork = new_bot(forker)
    fork.forked_from_id = source.id
    db.commit()

    def lineage(user: Any) -> Any:
        response = client.get(f"{BOTS}/{fork.id}", headers=user.headers)
        assert response.status_code == 200
        return response.json["forked_from"]

    assert lineage(stranger) == {"id": str(source.id), "name": "secret-sauce"}
    for change in ("private", "unlisted", "hidden", "owner disabled"):
        if change == "hidden":
            source.hidden_at = datetime.now(UTC)
        elif change == "owner disabled":
            disable_user(author, datetime.now(UTC))
        else:
            source.visibility = change
        db.commit()
        assert lineage(stranger) is None, change
        assert lineage(forker) is None, change
        body = client.get(f"{BOTS}/{fork.id}", headers=stranger.headers).get_data(as_text=True)
        assert str(source.id) not in body and "secret-sauce" not in body
        source.visibility, source.hidden_at = "public", None
        author.is_active, author.disabled_at = True, None
        db.commit()
    # The source's owner is always shown their own bot, private or not.
    source.visibility = "private"
    db.commit()
    mine = client.get(f"{BOTS}/{fork.id}", headers=author.headers)
    assert mine.json["forked_from"] == {"id": str(source.id), "name": "secret-sauce"}


def test_the_star_budget_gives_429(
    app: Flask, client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, fan = person(), person()
    bot = new_bot(owner)
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(rate_limit_star="2/minute")
    try:
        assert client.put(star_url(bot.id), headers=fan.headers).status_code == 200
        assert client.delete(star_url(bot.id), headers=fan.headers).status_code == 200
        refused = client.put(star_url(bot.id), headers=fan.headers)
        assert refused.status_code == 429 and refused.json["code"] == 429
        assert "Retry-After" in refused.headers
        # Per user: someone else still stars.
        assert client.put(star_url(bot.id), headers=owner.headers).status_code == 200
    finally:
        app.extensions["botyard.settings"] = original


# --- Concurrency: real commits from many threads, each with its own client and session ---


def test_concurrent_stars_and_unstars_leave_the_count_right(
    app: Flask, committed: list[uuid.UUID]
) -> None:
    with app.app_context():
        names = [f"racer_{uuid.uuid4().hex[:10]}" for _ in range(11)]
        users = [create_user(f"{n}@example.com", n, PASSWORD) for n in names]
        database.session.commit()
        committed.extend(user.id for user in users)
        bot = create_bot(users[0].id, {**BOT, "name": "raced"})
        bot.visibility = "public"
        database.session.commit()
        bot_id = bot.id
        database.session.remove()

    def headers(name: str) -> dict[str, str]:
        response = app.test_client().post(
            "/api/v1/auth/login", json={"login": name, "password": PASSWORD}
        )
        assert response.status_code == 200, response.json
        return bearer(response.json["access_token"])

    tokens = [headers(n) for n in names[1:]]
    # Four kinds of user, each a script of calls; two threads run the same script for the
    # "twice" users, so the same user's PUTs race each other as well as everyone else's.
    scripts: list[tuple[dict[str, str], list[str]]] = []
    expected = 0
    for i, token in enumerate(tokens):
        kind = i % 4
        if kind == 0:  # starred, from two threads at once
            scripts += [(token, ["put", "put"]), (token, ["put"])]
            expected += 1
        elif kind == 1:  # starred then unstarred
            scripts.append((token, ["put", "delete"]))
        elif kind == 2:  # unstarred first (nothing), then starred twice
            scripts.append((token, ["delete", "put", "put"]))
            expected += 1
        else:  # starred, unstarred, starred
            scripts.append((token, ["put", "delete", "put"]))
            expected += 1
    start = threading.Barrier(len(scripts))

    def run(script: tuple[dict[str, str], list[str]]) -> list[int]:
        token, calls = script
        client = app.test_client()
        start.wait(timeout=60)  # everyone begins together: the calls really race
        statuses = []
        for call in calls:
            response = getattr(client, call)(star_url(bot_id), headers=token)
            statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=len(scripts)) as pool:
        results = list(pool.map(run, scripts))
    assert all(status == 200 for statuses in results for status in statuses), results

    with app.app_context():
        rows = database.session.scalar(
            select(func.count()).select_from(BotStar).where(BotStar.bot_id == bot_id)
        )
        database.session.remove()
    card = app.test_client().get(f"{BOTS}/{bot_id}", headers=tokens[0]).json
    assert rows == expected == card["stars"]
    assert card["starred_by_me"] is True  # tokens[0] is a kind-0 user
