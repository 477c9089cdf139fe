"""Moderation: the report queue, resolving and dismissing, hiding and restoring, the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from models.community.tables import Comment, Report
from tests import leaderboard_world as world
from tests.api.community.people import Person
from tests.api.community.reporting import (
    NOW,
    QUEUE,
    audit,
    bot_of,
    comment_on,
    hidden_notices,
    report,
    set_created,
)

MOD = "/api/v1/moderation"


@pytest.fixture
def people(person: Callable[..., Person]) -> dict[str, Person]:
    """alice owns things, bob and carol report them, mod moderates, root reads the audit."""

    def named(name: str, roles: tuple[str, ...] = ("user",)) -> Person:
        return person(f"{name}_{uuid.uuid4().hex[:5]}", roles)

    return {
        "alice": named("alice"),
        "bob": named("bob"),
        "carol": named("carol"),
        "mod": named("mod", ("moderator", "user")),
        "root": named("root", ("admin", "user")),
    }


def post(client: FlaskClient, who: Person, path: str, body: dict[str, Any]) -> Any:
    return client.post(f"{MOD}{path}", json=body, headers=who.headers)


def queue(client: FlaskClient, who: Person, **query: Any) -> Any:
    response = client.get(QUEUE, query_string=query, headers=who.headers)
    assert response.status_code == 200, response.json
    return response.json


def test_only_moderators_and_admins_reach_moderation(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    bot = bot_of(people["alice"], "target")
    made = report(client, people["bob"], "bot", bot.id).json
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", QUEUE, None),
        ("POST", f"{MOD}/reports/{made['id']}/resolve", {"note": "ok"}),
        ("POST", f"{MOD}/reports/{made['id']}/dismiss", {"note": "ok"}),
        ("POST", f"{MOD}/bots/{bot.id}/hide", {"reason": "spam"}),
        ("POST", f"{MOD}/bots/{bot.id}/restore", {}),
        ("POST", f"{MOD}/comments/{uuid.uuid4()}/hide", {"reason": "spam"}),
        ("POST", f"{MOD}/comments/{uuid.uuid4()}/restore", {}),
    ]
    for method, path, body in calls:
        assert client.open(path, method=method, json=body).status_code == 401, path
        plain = client.open(path, method=method, json=body, headers=people["bob"].headers)
        assert plain.status_code == 403, path
        assert "content:moderate" in plain.json["message"]
    assert queue(client, people["mod"])["items"][0]["id"] == made["id"]
    assert queue(client, people["root"])["items"][0]["id"] == made["id"]
    db.refresh(bot)
    assert bot.hidden_at is None  # nothing the refused calls asked for happened


def test_the_queue_is_oldest_first_with_each_targets_summary(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, carol, mod = (people[n] for n in ("alice", "bob", "carol", "mod"))
    bot = bot_of(alice, "scammy")
    comment = comment_on(bot, carol, "send me your keys")
    made = {
        "comment": report(client, bob, "comment", comment.id).json,
        "user": report(client, bob, "user", carol.name, reason="abuse").json,
        "bot": report(client, carol, "bot", bot.id, reason="scam").json,
        "bot2": report(client, bob, "bot", bot.id).json,
    }
    for minutes, key in enumerate(("bot", "comment", "user", "bot2")):
        set_created(made[key]["id"], NOW + timedelta(minutes=minutes))
    # Moderators see hidden content: the hidden bot is still summarised.
    assert post(client, mod, f"/bots/{bot.id}/hide", {"reason": "scam"}).status_code == 200
    items = queue(client, mod)["items"]
    assert [i["id"] for i in items] == [made[k]["id"] for k in ("bot", "comment", "user", "bot2")]
    first = items[0]
    assert first["reporter"] == {"id": str(carol.id), "username": carol.name}
    assert first["resolved_by"] is None and first["resolution"] is None
    assert first["status"] == "open" and first["reason"] == "scam"
    target = first["target"]
    assert target["name"] == "scammy" and target["bot_id"] == str(bot.id)
    assert target["username"] == alice.name and target["user_id"] == str(alice.id)
    assert target["visibility"] == "public" and target["hidden_at"] is not None
    assert target["open_reports"] == 2 and target["body"] is None
    on_comment = items[1]["target"]
    assert on_comment["body"] == "send me your keys" and on_comment["username"] == carol.name
    assert on_comment["bot_id"] == str(bot.id) and on_comment["hidden_at"] is None
    on_user = items[2]["target"]
    assert on_user["username"] == on_user["name"] == carol.name and on_user["bot_id"] is None
    # Filters, and paging by cursor walks each report once.
    assert [i["id"] for i in queue(client, mod, target_type="comment")["items"]] == [
        made["comment"]["id"]
    ]
    seen, cursor = [], None
    while True:
        page = queue(client, mod, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["id"] for i in items]
    assert queue(client, mod, status="resolved")["items"] == []
    # A deleted target leaves the report with no summary.
    db.delete(db.get(Comment, comment.id))
    db.commit()
    assert queue(client, mod, target_type="comment")["items"][0]["target"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"status": "closed"},
        {"target_type": "backtest"},
        {"limit": 0},
        {"limit": 101},
        {"cursor": "nonsense"},
        {"cursor": "99999999999999999999999.abc"},
        {"cursor": "1.\x00"},
        {"colour": "red"},
    ],
)
def test_bad_queue_queries_are_422(
    client: FlaskClient, people: dict[str, Person], query: dict[str, Any]
) -> None:
    response = client.get(QUEUE, query_string=query, headers=people["mod"].headers)
    assert response.status_code == 422, response.json


def test_resolve_and_dismiss_close_a_report_once(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, mod, root = (people[n] for n in ("alice", "bob", "mod", "root"))
    bot = bot_of(alice, "target")
    first = report(client, bob, "bot", bot.id).json
    second = report(client, bob, "user", alice.name).json
    resolved = post(client, mod, f"/reports/{first['id']}/resolve", {"note": "warned them"})
    assert resolved.status_code == 200, resolved.json
    body = resolved.json
    assert body["status"] == "resolved" and body["resolution"] == "warned them"
    assert body["resolved_by"] == {"id": str(mod.id), "username": mod.name}
    assert body["resolved_at"] is not None and body["target"]["hidden_at"] is None
    assert bot.hidden_at is None  # resolving alone hides nothing
    # A closed report is final: resolving or dismissing it again is a 409 and changes nothing.
    for action in ("resolve", "dismiss"):
        again = post(client, root, f"/reports/{first['id']}/{action}", {"note": "again"})
        assert again.status_code == 409 and "already resolved" in again.json["message"]
    hide_again = post(client, root, f"/reports/{first['id']}/resolve", {"note": "x", "hide": True})
    assert hide_again.status_code == 409
    dismissed = post(client, mod, f"/reports/{second['id']}/dismiss", {"note": "not abuse"})
    assert dismissed.status_code == 200 and dismissed.json["status"] == "dismissed"
    assert post(client, mod, f"/reports/{second['id']}/resolve", {"note": "x"}).status_code == 409
    assert post(client, mod, f"/reports/{uuid.uuid4()}/resolve", {"note": "x"}).status_code == 404
    assert queue(client, mod)["items"] == []
    assert [i["id"] for i in queue(client, mod, status="resolved")["items"]] == [first["id"]]
    assert [i["id"] for i in queue(client, mod, status="dismissed")["items"]] == [second["id"]]
    stored = db.get(Report, uuid.UUID(first["id"]), populate_existing=True)
    assert stored.resolution == "warned them" and stored.resolved_by == mod.id
    assert hidden_notices(alice.id) == []
    rows = audit(client, root.headers)
    assert [(r["verb"], r["object_id"], r["actor"]["id"]) for r in rows] == [
        ("moderation.report_resolved", first["id"], str(mod.id)),
        ("moderation.report_dismissed", second["id"], str(mod.id)),
    ]
    assert rows[0]["data"] == {"target_type": "bot", "target_id": str(bot.id), "hid_target": False}


@pytest.mark.parametrize(
    "body", [{}, {"note": ""}, {"note": "a\x00b"}, {"note": "x" * 1001}, {"note": "ok", "hide": 3}]
)
def test_bad_closing_bodies_are_422(
    client: FlaskClient, people: dict[str, Person], body: dict[str, Any]
) -> None:
    made = report(client, people["bob"], "user", people["alice"].name).json
    answer = post(client, people["mod"], f"/reports/{made['id']}/resolve", body)
    assert answer.status_code == 422, answer.json
    assert queue(client, people["mod"])["items"][0]["status"] == "open"


def test_resolving_with_hide_hides_the_target_and_tells_the_owner(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, mod, root = (people[n] for n in ("alice", "bob", "mod", "root"))
    bot = bot_of(alice, "target")
    comment = comment_on(bot_of(bob, "bobs"), alice, "rude words")
    on_bot = report(client, bob, "bot", bot.id, reason="scam").json
    on_comment = report(client, bob, "comment", comment.id, reason="abuse").json
    on_user = report(client, bob, "user", alice.name).json
    # A user cannot be hidden: 422, and the report stays open.
    refused = post(client, mod, f"/reports/{on_user['id']}/resolve", {"note": "x", "hide": True})
    assert refused.status_code == 422 and "hide" in refused.json["errors"]["json"]
    for made in (on_bot, on_comment):
        done = post(client, mod, f"/reports/{made['id']}/resolve", {"note": "gone", "hide": True})
        assert done.status_code == 200, done.json
        assert done.json["status"] == "resolved" and done.json["target"]["hidden_at"] is not None
    db.refresh(bot)
    db.refresh(comment)
    assert bot.hidden_at is not None and comment.hidden_at is not None
    assert hidden_notices(alice.id) == [
        {"object_type": "bot", "object_id": str(bot.id), "bot_id": str(bot.id), "reason": "scam"},
        {
            "object_type": "comment",
            "object_id": str(comment.id),
            "bot_id": str(comment.bot_id),
            "reason": "abuse",
        },
    ]
    assert [(r["verb"], r["object_id"]) for r in audit(client, root.headers)] == [
        ("moderation.bot_hidden", str(bot.id)),
        ("moderation.report_resolved", on_bot["id"]),
        ("moderation.comment_hidden", str(comment.id)),
        ("moderation.report_resolved", on_comment["id"]),
    ]
    assert queue(client, mod)["items"][0]["id"] == on_user["id"]


def test_hiding_a_bot_removes_it_for_others_until_it_is_restored(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, mod, root = (people[n] for n in ("alice", "bob", "mod", "root"))
    shown = world.ranked(world.bot(alice.user), sharpe=1.0)
    target = world.ranked(world.bot(alice.user), sharpe=2.0)
    db.commit()
    world.run_recompute()

    def seen_by_others() -> dict[str, Any]:
        profile = client.get(f"/api/v1/users/{alice.name}")
        board = client.get("/api/v1/leaderboards", headers=bob.headers)
        assert profile.status_code == board.status_code == 200
        return {
            "direct": client.get(f"/api/v1/bots/{target.id}", headers=bob.headers).status_code,
            "profile": {b["id"] for b in profile.json["public_bots"]},
            "board": {e["bot"]["id"] for e in board.json["entries"]},
        }

    both = {str(shown.id), str(target.id)}
    assert seen_by_others() == {"direct": 200, "profile": both, "board": both}
    hidden = post(client, mod, f"/bots/{target.id}/hide", {"reason": "misleading name"})
    assert hidden.status_code == 200, hidden.json
    assert hidden.json["hidden"] is True and hidden.json["changed"] is True
    assert hidden.json["object_type"] == "bot" and hidden.json["object_id"] == str(target.id)
    again = post(client, mod, f"/bots/{target.id}/hide", {"reason": "still"})
    assert again.json["changed"] is False and again.json["hidden_at"] == hidden.json["hidden_at"]
    only = {str(shown.id)}
    assert seen_by_others() == {"direct": 404, "profile": only, "board": only}
    missing = client.get(f"/api/v1/bots/{uuid.uuid4()}", headers=bob.headers).json["message"]
    assert client.get(f"/api/v1/bots/{target.id}", headers=bob.headers).json["message"] == missing
    # Its owner still has it.
    own = client.get(f"/api/v1/bots/{target.id}", headers=alice.headers)
    assert own.status_code == 200 and own.json["view"] == "owner"
    mine = client.get("/api/v1/bots", headers=alice.headers).json["items"]
    assert str(target.id) in {b["id"] for b in mine}
    # Told once, for all the hides.
    assert hidden_notices(alice.id) == [
        {
            "object_type": "bot",
            "object_id": str(target.id),
            "bot_id": str(target.id),
            "reason": "misleading name",
        }
    ]
    restored = post(client, mod, f"/bots/{target.id}/restore", {"reason": "appeal upheld"})
    assert restored.status_code == 200 and restored.json["changed"] is True
    assert restored.json["hidden"] is False and restored.json["hidden_at"] is None
    assert post(client, mod, f"/bots/{target.id}/restore", {}).json["changed"] is False
    assert seen_by_others() == {"direct": 200, "profile": both, "board": both}
    rows = audit(client, root.headers)
    assert [(r["verb"], r["object_id"], r["actor"]["id"]) for r in rows] == [
        ("moderation.bot_hidden", str(target.id), str(mod.id)),
        ("moderation.bot_restored", str(target.id), str(mod.id)),
    ]
    assert rows[0]["data"] == {
        "owner_id": str(alice.id),
        "bot_id": str(target.id),
        "reason": "misleading name",
    }
    assert rows[1]["data"]["reason"] == "appeal upheld"
    assert len(hidden_notices(alice.id)) == 1  # restoring tells nobody


def test_hiding_a_comment_leaves_its_author_able_to_see_it(
    client: FlaskClient, db: Any, people: dict[str, Person]
) -> None:
    alice, bob, carol, mod, root = (people[n] for n in ("alice", "bob", "carol", "mod", "root"))
    bot = bot_of(alice, "commented")
    comment = comment_on(bot, bob, "spam spam")
    answer = post(client, mod, f"/comments/{comment.id}/hide", {"reason": "spam"})
    assert answer.status_code == 200 and answer.json["changed"] is True
    assert answer.json["bot_id"] == str(bot.id) and answer.json["object_type"] == "comment"
    assert post(client, mod, f"/comments/{comment.id}/hide", {"reason": "spam"}).json == {
        **answer.json,
        "changed": False,
    }
    db.refresh(comment)
    assert comment.hidden_at is not None
    # Hidden from others (a report of it is the 404 of a missing comment), not from its author.
    assert report(client, carol, "comment", comment.id).status_code == 404
    assert hidden_notices(bob.id) == [
        {
            "object_type": "comment",
            "object_id": str(comment.id),
            "bot_id": str(bot.id),
            "reason": "spam",
        }
    ]
    assert post(client, mod, f"/comments/{comment.id}/restore", {}).json["changed"] is True
    db.refresh(comment)
    assert comment.hidden_at is None
    assert report(client, carol, "comment", comment.id).status_code == 201
    assert [(r["verb"], r["object_id"]) for r in audit(client, root.headers)] == [
        ("moderation.comment_hidden", str(comment.id)),
        ("moderation.comment_restored", str(comment.id)),
    ]


def test_hiding_what_does_not_exist_or_without_a_reason(
    client: FlaskClient, people: dict[str, Person]
) -> None:
    mod, root = people["mod"], people["root"]
    bot = bot_of(people["alice"], "target")
    for path in ("bots", "comments"):
        for action in ("hide", "restore"):
            answer = post(client, mod, f"/{path}/{uuid.uuid4()}/{action}", {"reason": "x"})
            assert answer.status_code == 404, (path, action)
    for body in ({}, {"reason": ""}, {"reason": "\x00"}, {"reason": "x" * 1001}, {"why": "x"}):
        assert post(client, mod, f"/bots/{bot.id}/hide", body).status_code == 422, body
    assert post(client, mod, f"/bots/{bot.id}/restore", {"reason": 5}).status_code == 422
    assert audit(client, root.headers) == []
