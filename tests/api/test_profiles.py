"""Profiles: editing mine (PATCH /me), immutable usernames, and public profiles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from models.identity.tables import User
from models.people.tables import AccountSettings, Activity
from tests.helpers import bearer

ME = "/api/v1/me"
# "ADA_LOVELACE" in full-width forms (U+FF21...): NFKC folds it to ASCII.
FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) for c in "ADA_LOVELACE")
PUBLIC_KEYS = {
    "username",
    "display_name",
    "bio",
    "avatar_url",
    "joined_at",
    "public_bots",
    "counts",
}


@pytest.fixture
def ada(make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]) -> Any:
    user = make_user("Ada_Lovelace")
    user.headers = bearer(login(user.username)["access_token"])
    return user


def patch_me(client: FlaskClient, headers: dict[str, str], body: Any) -> Any:
    return client.patch(ME, json=body, headers=headers)


def test_patch_me_sets_normalises_and_clears_fields(client: FlaskClient, db: Any, ada: Any) -> None:
    response = patch_me(
        client,
        ada.headers,
        {
            "display_name": "  Ada L.  ",
            "bio": "Trend follower.\nLikes engines.",
            "avatar_url": "https://images.example.org/ada.png",
            "timezone": "Europe/Paris",
            "locale": "zh-hant-tw",
        },
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["display_name"] == "Ada L."
    assert body["bio"] == "Trend follower.\nLikes engines."
    assert body["avatar_url"] == "https://images.example.org/ada.png"
    assert body["timezone"] == "Europe/Paris"
    assert body["locale"] == "zh-Hant-TW"
    assert client.get(ME, headers=ada.headers).json == body

    # Only the named fields change; null and a blank string clear.
    cleared = patch_me(client, ada.headers, {"bio": None, "display_name": "   ", "locale": "pt-br"})
    assert cleared.status_code == 200
    assert cleared.json["bio"] is None and cleared.json["display_name"] is None
    assert cleared.json["locale"] == "pt-BR" and cleared.json["timezone"] == "Europe/Paris"

    rows = db.scalars(
        select(Activity)
        .where(Activity.actor_id == ada.id, Activity.verb == "profile.updated")
        .order_by(Activity.id)
    ).all()
    assert [row.data["fields"] for row in rows] == [
        ["display_name", "bio", "avatar_url", "timezone", "locale"],
        ["display_name", "bio", "locale"],
    ]
    assert rows[0].object_type == "user" and rows[0].object_id == str(ada.id)
    # Nothing changed: no activity.
    assert patch_me(client, ada.headers, {"timezone": "Europe/Paris"}).status_code == 200
    assert patch_me(client, ada.headers, {}).status_code == 200
    count = db.scalars(select(Activity).where(Activity.verb == "profile.updated")).all()
    assert len(count) == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", "x" * 81),
        ("display_name", "bell\x07"),
        ("display_name", "two\nlines"),
        ("display_name", "evil\u202egnp.exe"),
        ("display_name", 42),
        ("bio", "x" * 1001),
        ("bio", "nul\x00byte"),
        ("bio", "\u2066isolate"),
        ("avatar_url", "http://images.example.org/a.png"),
        ("avatar_url", "ftp://images.example.org/a.png"),
        ("avatar_url", "https://127.0.0.1/a.png"),
        ("avatar_url", "https://[::1]/a.png"),
        ("avatar_url", "https://localhost/a.png"),
        ("avatar_url", "https://intranet/a.png"),
        ("avatar_url", "https://images.test/a.png"),
        ("avatar_url", "https://images.local/a.png"),
        ("avatar_url", "https://user:secret@images.example.org/a.png"),
        ("avatar_url", "https://images.example.org:99999/a.png"),
        ("avatar_url", "https://exa mple.org/a.png"),
        ("avatar_url", "https:///a.png"),
        ("avatar_url", "not a url"),
        ("avatar_url", "https://images.example.org/" + "a" * 500),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "europe/paris"),
        ("timezone", ""),
        ("timezone", 1),
        ("locale", "english"),
        ("locale", "en_US"),
        ("locale", "e"),
        ("locale", "en-US-" + "-".join(["abcdefgh"] * 4)),
        ("locale", ""),
    ],
)
def test_patch_me_refuses_each_bad_value(
    client: FlaskClient, ada: Any, field: str, value: Any
) -> None:
    response = patch_me(client, ada.headers, {field: value})
    assert response.status_code == 422, (field, value, response.json)
    assert set(response.json["errors"]["json"]) == {field}
    assert client.get(ME, headers=ada.headers).json[field] is None


def test_patch_me_accepts_good_edge_values(client: FlaskClient, ada: Any) -> None:
    good = {
        "display_name": "x" * 80,
        "bio": "y" * 1000,
        "avatar_url": "https://xn--bcher-kva.de/a.png?size=64#top",
        "timezone": "UTC",
        "locale": "es-419",
    }
    response = patch_me(client, ada.headers, good)
    assert response.status_code == 200, response.json
    assert {k: response.json[k] for k in good} == good
    for tag, canonical in (("en", "en"), ("EN-us", "en-US"), ("sl-rozaj", "sl-rozaj")):
        assert patch_me(client, ada.headers, {"locale": tag}).json["locale"] == canonical
    umlaut = patch_me(client, ada.headers, {"avatar_url": "https://bücher.de/a.png"})
    assert umlaut.status_code == 200


def test_usernames_and_emails_cannot_be_patched(client: FlaskClient, ada: Any) -> None:
    response = patch_me(client, ada.headers, {"username": "someone_else", "display_name": "A"})
    assert response.status_code == 422
    assert "cannot be changed" in response.json["errors"]["json"]["username"][0]
    email = patch_me(client, ada.headers, {"email": "new@example.org"})
    assert email.status_code == 422
    assert "/api/v1/me/email" in email.json["errors"]["json"]["email"][0]
    me = client.get(ME, headers=ada.headers).json
    assert me["username"] == "Ada_Lovelace" and me["display_name"] is None
    assert me["email"] == "Ada_Lovelace@example.com"


@pytest.mark.parametrize("body", [{"is_active": False}, {"roles": ["admin"]}, {"id": "x"}, [], "x"])
def test_patch_me_refuses_unknown_keys_and_non_objects(
    client: FlaskClient, ada: Any, body: Any
) -> None:
    response = patch_me(client, ada.headers, body)
    assert response.status_code == 422
    assert "errors" in response.json


def test_patch_me_needs_a_token(client: FlaskClient, db: Any) -> None:
    assert client.patch(ME, json={"bio": "x"}).status_code == 401


def test_public_profile_shows_public_fields_only(
    client: FlaskClient, ada: Any, stranger: dict[str, str]
) -> None:
    patch_me(
        client,
        ada.headers,
        {"display_name": "Ada", "bio": "Hi", "timezone": "Europe/London", "locale": "en-GB"},
    )
    for headers in ({}, stranger, ada.headers):
        response = client.get("/api/v1/users/Ada_Lovelace", headers=headers)
        assert response.status_code == 200
        assert set(response.json) == PUBLIC_KEYS
        assert response.json["public_bots"] == []
        assert response.json["counts"] == {"public_bots": 0, "followers": 0, "following": 0}
        assert response.json["display_name"] == "Ada" and response.json["bio"] == "Hi"
        text = response.get_data(as_text=True)
        assert "example.com" not in text and "Europe/London" not in text and "en-GB" not in text
    joined = datetime.fromisoformat(response.json["joined_at"])
    assert joined.tzinfo is not None and joined <= datetime.now(UTC)


@pytest.mark.parametrize("name", ["ada_lovelace", "ADA_LOVELACE", FULL_WIDTH])
def test_public_profile_is_found_by_any_case_or_width(
    client: FlaskClient, ada: Any, name: str
) -> None:
    response = client.get(f"/api/v1/users/{name}")
    assert response.status_code == 200
    assert response.json["username"] == "Ada_Lovelace"


@pytest.mark.parametrize("name", ["nobody_here", "x" * 300, "ab", "%E2%80%AE"])
def test_unknown_profiles_are_404(client: FlaskClient, db: Any, name: str) -> None:
    response = client.get(f"/api/v1/users/{name}")
    assert response.status_code == 404
    assert response.json["message"] == "No user with that name."


def test_a_nul_in_the_name_is_refused_not_a_500(client: FlaskClient, db: Any) -> None:
    assert client.get("/api/v1/users/a%00b").status_code in (404, 422)


def test_private_profiles_are_404_to_all_but_their_owner(
    client: FlaskClient, db: Any, ada: Any, stranger: dict[str, str]
) -> None:
    response = client.patch(
        "/api/v1/me/settings", json={"profile_visibility": "private"}, headers=ada.headers
    )
    assert response.status_code == 200
    url = "/api/v1/users/ada_lovelace"
    assert client.get(url).status_code == 404
    assert client.get(url, headers=stranger).status_code == 404
    own = client.get(url, headers=ada.headers)
    assert own.status_code == 200 and set(own.json) == PUBLIC_KEYS
    assert db.get(AccountSettings, ada.id).document == {"profile_visibility": "private"}


@pytest.mark.parametrize("state", ["disabled", "deletion_requested", "erased"])
def test_gone_accounts_have_no_profile(
    client: FlaskClient, db: Any, make_user: Callable[..., Any], state: str
) -> None:
    user = make_user("fading_away")
    assert client.get("/api/v1/users/fading_away").status_code == 200
    now = datetime.now(UTC)
    row = db.get(User, user.id)
    if state == "disabled":
        row.is_active, row.disabled_at = False, now
    elif state == "deletion_requested":
        row.deletion_requested_at = now
    else:
        row.erased_at = now
    db.commit()
    response = client.get("/api/v1/users/fading_away")
    assert response.status_code == 404
    assert response.json["message"] == "No user with that name."
