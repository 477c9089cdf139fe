"""Comments (issue 15, item 4): plain text, one level of replies, own edits and deletes,
hidden comments, blocks, notifications, and only on bots the caller may see.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from models.bots.bots import Bot, create_bot
from models.community.tables import Block, Comment
from models.identity.users import disable_user
from models.people.tables import Activity, Notification
from tests.api.conftest import BOT

BOTS = "/api/v1/bots"
COMMENTS = "/api/v1/comments"


def comments_url(bot_id: Any) -> str:
    return f"{BOTS}/{bot_id}/comments"


@pytest.fixture(autouse=True)
def roomy_budget(app: Flask) -> Iterator[None]:
    """A comment budget no test reaches unless it lowers it on purpose."""
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(rate_limit_comment="1000/minute")
    yield
    app.extensions["botyard.settings"] = original


@pytest.fixture
def new_bot(db: Any, instruments: None) -> Callable[..., Bot]:
    """Make a committed bot of ``owner`` with the given visibility."""
    counter = iter(range(1, 1000))

    def make(owner: Any, visibility: str = "public") -> Bot:
        bot = create_bot(owner.id, {**BOT, "name": f"bot{next(counter)}"})
        bot.visibility = visibility
        db.commit()
        return bot

    return make


def post(client: FlaskClient, user: Any, bot: Bot, body: str, parent: Any = None) -> Any:
    payload: dict[str, Any] = {"body": body}
    if parent is not None:
        payload["parent_id"] = str(parent)
    return client.post(comments_url(bot.id), json=payload, headers=user.headers)


def made(client: FlaskClient, user: Any, bot: Bot, body: str, parent: Any = None) -> str:
    response = post(client, user, bot, body, parent)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def listed(client: FlaskClient, user: Any, bot: Bot, **query: Any) -> Any:
    response = client.get(comments_url(bot.id), query_string=query, headers=user.headers)
    assert response.status_code == 200, response.json
    return response.json


def notes(db: Any, user: Any, event: str) -> list[dict[str, Any]]:
    rows = db.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.event == event)
    )
    return [row.data for row in rows]


def test_bounds_on_the_text(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner = person()
    bot = new_bot(owner)
    refused = {
        "empty": "",
        "blank": "  \n\t ",
        "too long": "x" * 2001,
        "far too long": "y" * 10_000,
        "NUL": "a\x00b",
        "bell": "ding\x07",
        "escape": "\x1b[31mred",
        "DEL": "a\x7fb",
        "C1 control": "a\x85b",
    }
    for why, body in refused.items():
        response = post(client, owner, bot, body)
        assert response.status_code == 422, why
        assert response.json["code"] == 422 and "errors" in response.json, why
    for body in ({"body": 5}, {"body": None}, {}, {"body": "ok", "extra": 1}):
        response = client.post(comments_url(bot.id), json=body, headers=owner.headers)
        assert response.status_code == 422, body
    assert db.scalar(select(Comment.id).where(Comment.bot_id == bot.id)) is None
    edge = post(client, owner, bot, "  " + "z" * 2000 + "\n")
    assert edge.status_code == 201 and edge.json["body"] == "z" * 2000
    lines = post(client, owner, bot, "line one\r\n\tline two\rthree")
    assert lines.json["body"] == "line one\n\tline two\nthree"
    assert post(client, owner, bot, "naïve — 日本語 🚀").json["body"] == "naïve — 日本語 🚀"


def test_markup_comes_back_as_the_same_text_in_json(
    client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    bot = new_bot(owner)
    text = "<script>alert(\"x\")</script> & <b onmouseover='x()'>hi</b> &amp; &lt;"
    response = post(client, visitor, bot, text)
    assert response.status_code == 201
    assert response.content_type == "application/json"
    assert response.json["body"] == text
    page = client.get(comments_url(bot.id), headers=owner.headers)
    assert page.content_type == "application/json"
    assert page.json["items"][0]["body"] == text
    assert page.json["items"][0]["author"] == {"username": visitor.username}


def test_replies_go_one_level_deep_under_a_top_level_comment_of_the_same_bot(
    client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    bot, other_bot = new_bot(owner), new_bot(owner)
    top = made(client, visitor, bot, "top")
    reply = made(client, owner, bot, "reply", top)
    elsewhere = made(client, owner, other_bot, "elsewhere")
    for parent in (reply, elsewhere, uuid.uuid4(), "not-a-uuid"):
        response = post(client, visitor, bot, "deeper", parent)
        assert response.status_code == 422, parent
        assert "parent_id" in response.json["errors"]["json"]
    [item] = listed(client, visitor, bot)["items"]
    assert item["id"] == top and item["reply_count"] == 1
    assert [(r["id"], r["parent_id"], r["body"]) for r in item["replies"]] == [
        (reply, top, "reply")
    ]


def test_pages_oldest_first_with_the_first_replies_embedded(
    client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    bot = new_bot(owner)
    tops = [made(client, visitor, bot, f"top {n}") for n in range(5)]
    replies = [made(client, owner, bot, f"reply {n}", tops[0]) for n in range(5)]
    first = listed(client, visitor, bot, limit=2)
    assert [item["id"] for item in first["items"]] == tops[:2]
    head = first["items"][0]
    assert head["reply_count"] == 5
    assert [r["id"] for r in head["replies"]] == replies[:3]
    assert first["items"][1]["replies"] == [] and first["items"][1]["reply_count"] == 0
    second = listed(client, visitor, bot, limit=2, cursor=first["next_cursor"])
    third = listed(client, visitor, bot, limit=2, cursor=second["next_cursor"])
    assert [i["id"] for i in second["items"] + third["items"]] == tops[2:]
    assert third["next_cursor"] is None
    url = f"{COMMENTS}/{tops[0]}/replies"
    page = client.get(url, query_string={"limit": 4}, headers=visitor.headers).json
    rest = client.get(
        url, query_string={"cursor": page["next_cursor"]}, headers=visitor.headers
    ).json
    assert [r["id"] for r in page["items"] + rest["items"]] == replies
    assert rest["next_cursor"] is None
    bad = client.get(comments_url(bot.id), query_string={"cursor": "nope"}, headers=owner.headers)
    assert bad.status_code == 422
    too_many = client.get(comments_url(bot.id), query_string={"limit": 500}, headers=owner.headers)
    assert too_many.status_code == 422
    # Replies of a reply, or of no comment: 404.
    assert client.get(f"{COMMENTS}/{replies[0]}/replies", headers=owner.headers).status_code == 404
    assert (
        client.get(f"{COMMENTS}/{uuid.uuid4()}/replies", headers=owner.headers).status_code == 404
    )


def test_edit_and_delete_are_the_author_s_and_the_bot_owner_may_delete(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, author, other = person(), person(), person()
    bot = new_bot(owner)
    first = made(client, author, bot, "first")
    second = made(client, author, bot, "second")
    url = f"{COMMENTS}/{first}"
    # Someone who may see the comment but did not write it: 403; the owner cannot edit either.
    for user in (other, owner):
        response = client.patch(url, json={"body": "mine now"}, headers=user.headers)
        assert response.status_code == 403, response.json
    assert client.delete(url, headers=other.headers).status_code == 403
    edited = client.patch(url, json={"body": "first, edited"}, headers=author.headers)
    assert edited.status_code == 200
    assert edited.json["body"] == "first, edited" and edited.json["edited_at"] is not None
    assert client.patch(url, json={"body": ""}, headers=author.headers).status_code == 422
    assert client.patch(url, json={"nope": "x"}, headers=author.headers).status_code == 422
    [row] = [i for i in listed(client, other, bot)["items"] if i["id"] == first]
    assert row["body"] == "first, edited" and row["edited_at"] is not None
    assert (row["mine"], listed(client, author, bot)["items"][0]["mine"]) == (False, True)
    # Its author deletes one; the bot's owner deletes the other.
    assert client.delete(url, headers=author.headers).status_code == 204
    assert client.delete(f"{COMMENTS}/{second}", headers=owner.headers).status_code == 204
    assert listed(client, author, bot)["items"] == []
    assert db.scalar(select(Comment.id).where(Comment.bot_id == bot.id)) is None
    for call in (client.delete, client.patch):
        gone = call(url, json={"body": "x"}, headers=author.headers)
        assert gone.status_code == 404


def test_a_deleted_comment_with_replies_stays_as_a_placeholder_until_its_last_reply_goes(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, author, replier = person(), person(), person()
    bot = new_bot(owner)
    top = made(client, author, bot, "top secret text")
    replies = [made(client, replier, bot, f"reply {n}", top) for n in range(2)]
    assert client.delete(f"{COMMENTS}/{top}", headers=author.headers).status_code == 204
    response = client.get(comments_url(bot.id), headers=replier.headers)
    [item] = response.json["items"]
    assert item["id"] == top and item["deleted"] is True
    assert (item["body"], item["author"], item["mine"]) == (None, None, False)
    assert author.username not in response.get_data(as_text=True)
    assert "top secret text" not in response.get_data(as_text=True)
    assert [r["id"] for r in item["replies"]] == replies and item["reply_count"] == 2
    # A placeholder takes no replies and no edits.
    assert post(client, replier, bot, "more", top).status_code == 422
    patched = client.patch(f"{COMMENTS}/{top}", json={"body": "back"}, headers=author.headers)
    assert patched.status_code == 404
    for reply in replies:
        assert client.delete(f"{COMMENTS}/{reply}", headers=replier.headers).status_code == 204
    assert listed(client, replier, bot)["items"] == []
    assert db.get(Comment, uuid.UUID(top)) is None


def test_hidden_comments_are_shown_to_their_author_only(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, author, other = person(), person(), person()
    bot = new_bot(owner)
    top = made(client, author, bot, "rude")
    shown = made(client, other, bot, "fine")
    hidden_reply = made(client, author, bot, "rude again", shown)
    kept_reply = made(client, owner, bot, "ok", shown)
    for comment_id in (top, hidden_reply):
        db.get(Comment, uuid.UUID(comment_id)).hidden_at = datetime.now(UTC)
    db.commit()
    for viewer in (other, owner):
        body = client.get(comments_url(bot.id), headers=viewer.headers)
        assert [i["id"] for i in body.json["items"]] == [shown]
        assert body.json["items"][0]["reply_count"] == 1
        assert [r["id"] for r in body.json["items"][0]["replies"]] == [kept_reply]
        assert "rude" not in body.get_data(as_text=True)
        replies = client.get(f"{COMMENTS}/{shown}/replies", headers=viewer.headers).json
        assert [r["id"] for r in replies["items"]] == [kept_reply]
        assert client.get(f"{COMMENTS}/{top}/replies", headers=viewer.headers).status_code == 404
        assert post(client, viewer, bot, "reply to hidden", top).status_code == 422
        for call in (client.patch, client.delete):
            assert (
                call(f"{COMMENTS}/{top}", json={"body": "x"}, headers=viewer.headers).status_code
                == 404
            )
    mine = listed(client, author, bot)
    assert [(i["id"], i["hidden"]) for i in mine["items"]] == [(top, True), (shown, False)]
    assert [r["id"] for r in mine["items"][1]["replies"]] == [hidden_reply, kept_reply]
    assert mine["items"][1]["replies"][0]["hidden"] is True
    # Its author cannot edit it past moderation, but may delete it.
    edit = client.patch(f"{COMMENTS}/{top}", json={"body": "nicer"}, headers=author.headers)
    assert edit.status_code == 409
    assert client.delete(f"{COMMENTS}/{top}", headers=author.headers).status_code == 204


def test_a_bot_i_may_not_see_is_404_on_every_comment_path(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    private, hidden, of_disabled = new_bot(owner, "private"), new_bot(owner), new_bot(owner)
    gone_owner = person()
    later_private = new_bot(gone_owner)
    made_before = made(client, visitor, later_private, "said while public")
    reply_parent = made(client, gone_owner, later_private, "owner's")
    db.get(Bot, of_disabled.id).owner_id = gone_owner.id
    hidden.hidden_at = datetime.now(UTC)
    own_private_top = made(client, owner, private, "owner talks to self")
    later_private.visibility = "private"
    db.commit()
    disable_user(gone_owner, datetime.now(UTC))
    db.commit()
    missing = client.get(comments_url(uuid.uuid4()), headers=visitor.headers)
    assert missing.status_code == 404
    for bot in (private, hidden, of_disabled, later_private):
        calls = [
            client.get(comments_url(bot.id), headers=visitor.headers),
            post(client, visitor, bot, "hello"),
            post(client, visitor, bot, "hello", own_private_top),
        ]
        for response in calls:
            assert response.status_code == 404, (bot.name, response.json)
            assert response.json["message"] == missing.json["message"]
    comment_missing = client.patch(
        f"{COMMENTS}/{uuid.uuid4()}", json={"body": "x"}, headers=visitor.headers
    )
    assert comment_missing.status_code == 404
    for comment_id in (made_before, reply_parent, own_private_top):
        for response in (
            client.patch(f"{COMMENTS}/{comment_id}", json={"body": "x"}, headers=visitor.headers),
            client.delete(f"{COMMENTS}/{comment_id}", headers=visitor.headers),
            client.get(f"{COMMENTS}/{comment_id}/replies", headers=visitor.headers),
        ):
            assert response.status_code == 404
            assert response.json["message"] == comment_missing.json["message"]
    # The owner always reads and comments on their own private bot.
    assert post(client, owner, private, "still mine").status_code == 201
    assert len(listed(client, owner, private)["items"]) == 2


def test_blocks_hold(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, pest, writer, host = person(), person(), person(), person()
    bot = new_bot(owner)
    other_bot = new_bot(host)
    owners_top = made(client, owner, bot, "welcome")
    writers_top = made(client, writer, other_bot, "hello")
    db.add(Block(blocker_id=owner.id, blocked_id=pest.id))
    db.add(Block(blocker_id=writer.id, blocked_id=owner.id))
    db.commit()
    # The owner blocked the pest: no comments, no replies on the owner's bots; reading is fine.
    for response in (post(client, pest, bot, "hi"), post(client, pest, bot, "hi", owners_top)):
        assert response.status_code == 403
        assert response.json["message"] == "You cannot comment here."
    assert len(listed(client, pest, bot)["items"]) == 1
    # The writer blocked the owner: on a third user's bot, the owner cannot reply to the
    # writer's comment, but may still comment there.
    assert post(client, owner, other_bot, "hey", writers_top).status_code == 403
    assert post(client, owner, other_bot, "top level is fine").status_code == 201
    assert db.scalar(select(Comment.id).where(Comment.author_id == pest.id)) is None
    assert notes(db, owner, "bot.commented") == []
    assert notes(db, writer, "comment.replied") == []
    assert [n["by"] for n in notes(db, host, "bot.commented")] == [writer.username, owner.username]
    # The writer comments on the owner's bot: fine (the owner blocked nobody but the pest).
    assert post(client, writer, bot, "hello owner").status_code == 201


def test_notifications_go_once_and_never_to_oneself(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, alice, bob = person(), person(), person()
    bot = new_bot(owner)
    made(client, owner, bot, "my own bot")
    assert notes(db, owner, "bot.commented") == []
    top = made(client, alice, bot, "from alice")
    assert notes(db, owner, "bot.commented") == [
        {"bot_id": str(bot.id), "bot_name": bot.name, "comment_id": top, "by": alice.username}
    ]
    # Bob replies to Alice: Alice is told of the reply, the owner of a comment on the bot.
    reply = made(client, bob, bot, "from bob", top)
    assert notes(db, alice, "comment.replied") == [
        {"bot_id": str(bot.id), "comment_id": reply, "parent_id": top, "by": bob.username}
    ]
    assert [n["comment_id"] for n in notes(db, owner, "bot.commented")] == [top, reply]
    # Alice replies to herself: the owner hears of it, she does not.
    made(client, alice, bot, "and me", top)
    assert len(notes(db, alice, "comment.replied")) == 1
    assert len(notes(db, owner, "bot.commented")) == 3
    # Bob replies to the owner's comment: one notification (the reply), not two.
    owners = made(client, owner, bot, "owner speaks")
    answer = made(client, bob, bot, "to the owner", owners)
    assert [n["comment_id"] for n in notes(db, owner, "comment.replied")] == [answer]
    assert len(notes(db, owner, "bot.commented")) == 3
    # Edits tell nobody.
    client.patch(f"{COMMENTS}/{answer}", json={"body": "edited"}, headers=bob.headers)
    assert len(notes(db, owner, "comment.replied")) == 1


def test_a_comment_is_recorded_for_the_feed(
    client: FlaskClient, db: Any, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    bot = new_bot(owner)
    comment_id = made(client, visitor, bot, "hello")
    [row] = db.scalars(
        select(Activity).where(Activity.actor_id == visitor.id, Activity.verb == "comment.created")
    ).all()
    assert (row.object_type, row.object_id, row.data) == (
        "comment",
        comment_id,
        {"bot_id": str(bot.id)},
    )


def test_the_comment_budget_gives_429_on_posts_and_edits(
    app: Flask, client: FlaskClient, person: Callable[[], Any], new_bot: Callable[..., Bot]
) -> None:
    owner, visitor = person(), person()
    bot = new_bot(owner)
    settings = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = settings.replace(rate_limit_comment="2/minute")
    comment_id = made(client, visitor, bot, "one")
    edit = client.patch(f"{COMMENTS}/{comment_id}", json={"body": "two"}, headers=visitor.headers)
    assert edit.status_code == 200
    refused = post(client, visitor, bot, "three")
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    again = client.patch(f"{COMMENTS}/{comment_id}", json={"body": "4"}, headers=visitor.headers)
    assert again.status_code == 429
    # Reading is not counted, and the budget is the visitor's alone.
    assert len(listed(client, visitor, bot)["items"]) == 1
    assert post(client, owner, bot, "owner").status_code == 201
