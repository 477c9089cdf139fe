"""POST /api/v1/reports: what may be reported, by whom, how often (docs/community.md#moderation)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from models.community.reports import close_report
from models.community.tables import Report
from models.identity.users import disable_user
from tests.api.community.people import Person
from tests.api.community.reporting import (
    REPORTS,
    bot_of,
    comment_on,
    limits,
    make_private,
    report,
)
from tests.helpers import bearer


@pytest.fixture
def people(
    db: Any, instruments: None, make_user: Callable[..., Any], login: Callable[..., Any]
) -> dict[str, Person]:
    """alice owns things, bob reports them, mod moderates."""

    def person(name: str, roles: tuple[str, ...] = ("user",)) -> Person:
        user = make_user(f"{name}_{uuid.uuid4().hex[:5]}", roles=roles)
        return Person(user, bearer(login(user.username)["access_token"]))

    return {
        "alice": person("alice"),
        "bob": person("bob"),
        "carol": person("carol"),
        "mod": person("mod", ("moderator", "user")),
    }


def open_reports(db: Any) -> list[Report]:
    return list(db.scalars(sa.select(Report).where(Report.status == "open")))


def test_a_report_of_a_public_bot_and_the_same_report_again(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob = people["alice"], people["bob"]
    bot = bot_of(alice, "shared")
    body = {
        "target_type": "bot",
        "target_id": str(bot.id),
        "reason": "scam",
        "details": "  promises 1000% a day\nsee the name  ",
    }
    first = client.post(REPORTS, json=body, headers=bob.headers)
    assert first.status_code == 201, first.json
    made = first.json
    assert made["target_type"] == "bot" and made["target_id"] == str(bot.id)
    assert made["reason"] == "scam" and made["status"] == "open"
    assert made["details"] == "promises 1000% a day\nsee the name"  # trimmed, lines kept
    assert set(made) == {
        "id",
        "target_type",
        "target_id",
        "reason",
        "details",
        "status",
        "created_at",
    }
    # Again while it is open: a 409, and the first report stays as it was.
    again = report(client, bob, "bot", bot.id, reason="other")
    assert again.status_code == 409 and "reported this already" in again.json["message"]
    assert [(r.id, r.reason) for r in open_reports(db)] == [(uuid.UUID(made["id"]), "scam")]
    # Someone else's report of the same bot is theirs.
    assert report(client, people["carol"], "bot", bot.id).status_code == 201
    # Once closed, a new report may be made.
    close_report(uuid.UUID(made["id"]), people["mod"].id, "dismissed", "fine", datetime.now(UTC))
    db.commit()
    third = report(client, bob, "bot", bot.id, reason="other")
    assert third.status_code == 201 and third.json["id"] != made["id"]
    assert third.json["reason"] == "other"


def test_an_unlisted_bot_can_be_reported_by_whoever_sees_it(
    client: FlaskClient, people: dict[str, Person]
) -> None:
    bot = bot_of(people["alice"], "unlisted", visibility="unlisted")
    assert report(client, people["bob"], "bot", bot.id).status_code == 201


def test_invisible_bots_and_comments_are_the_same_404_as_missing_ones(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    private = bot_of(alice, "private", visibility="private")
    hidden = bot_of(alice, "hidden")
    hidden.hidden_at = datetime.now(UTC)
    shown = bot_of(alice, "shown")
    db.commit()
    bots = [private.id, hidden.id, uuid.uuid4()]
    answers = [report(client, bob, "bot", i) for i in bots]
    assert [a.status_code for a in answers] == [404, 404, 404]
    missing_bot = answers[-1].json["message"]
    assert {a.json["message"] for a in answers} == {missing_bot}
    comments = [
        comment_on(private, alice).id,  # on a bot bob cannot see
        comment_on(shown, carol, hidden_at=datetime.now(UTC)).id,
        comment_on(shown, carol, deleted_at=datetime.now(UTC), body="").id,
        uuid.uuid4(),
    ]
    answers = [report(client, bob, "comment", i) for i in comments]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert len({a.json["message"] for a in answers}) == 1
    # A bot whose owner was disabled is gone for others too.
    disable_user(alice.user, datetime.now(UTC))
    db.commit()
    gone = report(client, bob, "bot", shown.id)
    assert gone.status_code == 404 and gone.json["message"] == missing_bot
    assert open_reports(db) == []


def test_a_visible_comment_can_be_reported(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    bot = bot_of(people["alice"], "commented")
    comment = comment_on(bot, people["carol"], "buy my course")
    answer = report(client, people["bob"], "comment", comment.id, reason="spam")
    assert answer.status_code == 201 and answer.json["target_id"] == str(comment.id)
    # The bot's owner sees comments on their bot, so they may report one too.
    assert report(client, people["alice"], "comment", comment.id).status_code == 201


def test_users_are_reported_by_username_or_id_if_their_profile_is_visible(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    by_name = report(client, bob, "user", alice.name.upper(), reason="impersonation")
    assert by_name.status_code == 201, by_name.json
    assert by_name.json["target_id"] == str(alice.id)  # stored as the id
    by_id = report(client, bob, "user", alice.id)  # the same user: the same open report
    assert by_id.status_code == 409
    make_private(carol)
    answers = [
        report(client, bob, "user", carol.name),
        report(client, bob, "user", carol.id),
        report(client, bob, "user", "nobody_at_all"),
        report(client, bob, "user", uuid.uuid4()),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert len({a.json["message"] for a in answers}) == 1


def test_my_own_things_cannot_be_reported(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice = people["alice"]
    mine = bot_of(alice, "mine", visibility="private")
    on_theirs = comment_on(bot_of(people["bob"], "theirs"), alice)
    for target_type, target_id in [
        ("user", alice.name),
        ("user", alice.id),
        ("bot", mine.id),
        ("comment", on_theirs.id),
    ]:
        answer = report(client, alice, target_type, target_id)
        assert answer.status_code == 422, (target_type, answer.json)
        assert "You cannot report" in answer.json["errors"]["json"]["target_id"][0]
    assert open_reports(db) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"target_id": "not-a-uuid"},
        {"target_id": "\x00"},
        {"target_id": ""},
        {"target_id": "x" * 65},
        {"target_id": 12},
        {"target_type": "backtest"},
        {"reason": "dislike"},
        {"reason": None},
        {"details": "a\x00b"},
        {"details": "bell\x07"},
        {"details": "x" * 2001},
        {"details": ""},
        {"colour": "red"},
    ],
)
def test_bad_reports_are_422(
    client: FlaskClient, db: Any, people: dict[str, Person], changes: dict[str, Any]
) -> None:
    bot = bot_of(people["alice"], "target")
    body = {"target_type": "bot", "target_id": str(bot.id), "reason": "spam", **changes}
    answer = client.post(REPORTS, json=body, headers=people["bob"].headers)
    assert answer.status_code == 422, answer.json
    assert answer.json["code"] == 422 and answer.json["message"]
    assert open_reports(db) == []


def test_missing_fields_and_no_login(client: FlaskClient, people: dict[str, Person]) -> None:
    bot = bot_of(people["alice"], "target")
    for missing in ("target_type", "target_id", "reason"):
        body = {"target_type": "bot", "target_id": str(bot.id), "reason": "spam"}
        del body[missing]
        answer = client.post(REPORTS, json=body, headers=people["bob"].headers)
        assert answer.status_code == 422 and missing in answer.json["errors"]["json"]
    body = {"target_type": "bot", "target_id": str(bot.id), "reason": "spam"}
    assert client.post(REPORTS, json=body).status_code == 401


def test_reports_are_limited_per_user(
    app: Flask, client: FlaskClient, people: dict[str, Person]
) -> None:
    targets = [bot_of(people["alice"], f"b{i}") for i in range(3)]
    with limits(app, rate_limit_report="2/hour"):
        answers = [report(client, people["bob"], "bot", b.id).status_code for b in targets]
        assert answers == [201, 201, 429]
        # Another user has a budget of their own; a moderator's is ten times larger.
        assert report(client, people["carol"], "bot", targets[2].id).status_code == 201
        by_mod = [report(client, people["mod"], "bot", b.id).status_code for b in targets]
        assert by_mod == [201, 201, 201]
    assert report(client, people["bob"], "bot", targets[2].id).status_code == 201


def test_a_report_is_in_the_reporters_activity(
    client: FlaskClient, people: dict[str, Person]
) -> None:
    bot = bot_of(people["alice"], "target")
    made = report(client, people["bob"], "bot", bot.id).json
    assert report(client, people["bob"], "bot", bot.id).status_code == 409  # not recorded
    rows = client.get(
        "/api/v1/me/activity", query_string={"verb": "report."}, headers=people["bob"].headers
    ).json["rows"]
    assert [(r["verb"], r["object_id"]) for r in rows] == [("report.created", made["id"])]
    assert rows[0]["data"] == {"target_type": "bot", "target_id": str(bot.id), "reason": "spam"}
