"""Tokens and sessions: rotation, reuse detection, logout, revocation, algorithms."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt as pyjwt
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token, decode_token
from redis import Redis

from models.identity.tables import AuthSession
from tests.helpers import bearer

REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
SESSIONS = "/api/v1/auth/sessions"
ME = "/api/v1/me"


def test_token_lifetimes_are_15_minutes_and_30_days(app: Flask, make_user: Any, login: Any) -> None:
    make_user("clock")
    tokens = login("clock")
    with app.app_context():
        access = decode_token(tokens["access_token"])
        refresh = decode_token(tokens["refresh_token"])
    # The refresh token expires with its session, whose expiry was set a moment before iat.
    assert 15 * 60 - 1 <= access["exp"] - access["iat"] <= 15 * 60
    assert 30 * 24 * 3600 - 1 <= refresh["exp"] - refresh["iat"] <= 30 * 24 * 3600
    assert access["type"] == "access" and refresh["type"] == "refresh"
    assert access["fresh"] is True
    assert access["sid"] == refresh["sid"] == tokens["session"]["id"]


def test_refresh_rotates_and_the_new_pair_works(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("rotor")
    first = login("rotor")
    second = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert second.status_code == 200
    assert second.json["refresh_token"] != first["refresh_token"]
    assert second.json["session"]["id"] == first["session"]["id"]
    third = client.post(REFRESH, headers=bearer(second.json["refresh_token"]))
    assert third.status_code == 200
    assert client.get(ME, headers=bearer(third.json["access_token"])).status_code == 200


def test_refreshed_access_tokens_are_not_fresh(
    app: Flask, client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("stale")
    rotated = client.post(REFRESH, headers=bearer(login("stale")["refresh_token"])).json
    with app.app_context():
        assert decode_token(rotated["access_token"])["fresh"] is False


def test_reusing_a_refresh_token_revokes_the_whole_session(
    client: FlaskClient, make_user: Any, login: Any, db: Any
) -> None:
    make_user("thief")
    first = login("thief")
    second = client.post(REFRESH, headers=bearer(first["refresh_token"])).json
    replay = client.post(REFRESH, headers=bearer(first["refresh_token"]))
    assert replay.status_code == 401
    # The legitimate holder's newer tokens die with the session.
    assert client.post(REFRESH, headers=bearer(second["refresh_token"])).status_code == 401
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 401
    sess = db.get(AuthSession, first["session"]["id"])
    db.refresh(sess)
    assert sess.revoked_reason == "refresh_reuse"


def test_logout_revokes_access_and_refresh(client: FlaskClient, make_user: Any, login: Any) -> None:
    make_user("leaver")
    tokens = login("leaver")
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 204
    after = client.get(ME, headers=bearer(tokens["access_token"]))
    assert after.status_code == 401
    assert after.json["message"] == "Session has been revoked; log in again."
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 401


def test_revocation_survives_a_redis_flush(
    client: FlaskClient, make_user: Any, login: Any, redis: Redis
) -> None:
    make_user("flusher")
    tokens = login("flusher")
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200  # cached
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 204
    redis.flushdb()
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 401


def test_sessions_list_flags_current_and_revokes_one(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("multi")
    phone, laptop = login("multi"), login("multi")
    listed = client.get(SESSIONS, headers=bearer(laptop["access_token"])).json
    assert {s["id"] for s in listed} == {phone["session"]["id"], laptop["session"]["id"]}
    current = [s for s in listed if s["current"]]
    assert [s["id"] for s in current] == [laptop["session"]["id"]]

    gone = client.delete(
        f"{SESSIONS}/{phone['session']['id']}", headers=bearer(laptop["access_token"])
    )
    assert gone.status_code == 204
    assert client.get(ME, headers=bearer(phone["access_token"])).status_code == 401
    assert client.get(ME, headers=bearer(laptop["access_token"])).status_code == 200


def test_revoke_all_but_current(client: FlaskClient, make_user: Any, login: Any) -> None:
    make_user("purger")
    others = [login("purger") for _ in range(3)]
    keeper = login("purger")
    response = client.delete(SESSIONS, headers=bearer(keeper["access_token"]))
    assert response.json == {"revoked": 3}
    for tokens in others:
        assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
    assert client.get(ME, headers=bearer(keeper["access_token"])).status_code == 200
    assert len(client.get(SESSIONS, headers=bearer(keeper["access_token"])).json) == 1


def test_cannot_touch_another_users_session(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("mallory")
    make_user("victim2")
    attacker, victim = login("mallory"), login("victim2")
    response = client.delete(
        f"{SESSIONS}/{victim['session']['id']}", headers=bearer(attacker["access_token"])
    )
    assert response.status_code == 404
    assert client.get(ME, headers=bearer(victim["access_token"])).status_code == 200


def test_refresh_token_is_refused_where_access_is_expected_and_vice_versa(
    client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("mixer")
    tokens = login("mixer")
    wrong_for_me = client.get(ME, headers=bearer(tokens["refresh_token"]))
    wrong_for_refresh = client.post(REFRESH, headers=bearer(tokens["access_token"]))
    for response in (wrong_for_me, wrong_for_refresh):
        assert response.status_code == 401
        assert response.json["code"] == 401 and "token" in response.json["message"].lower()


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_and_other_algorithms_are_rejected(
    app: Flask, client: FlaskClient, make_user: Any, login: Any
) -> None:
    make_user("forger")
    tokens = login("forger")
    with app.app_context():
        claims = decode_token(tokens["access_token"])
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    secret = app.config["JWT_SECRET_KEY"]
    hs512 = pyjwt.encode(claims, secret, algorithm="HS512")
    wrong_key = pyjwt.encode(claims, "some-other-secret-that-is-long-enough!!", algorithm="HS256")
    for forged in (unsigned, hs512, wrong_key, "garbage", ""):
        response = client.get(ME, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401, forged
        assert response.json["status"] == "Unauthorized"
    assert (
        client.get(ME, headers=bearer(pyjwt.encode(claims, secret, algorithm="HS256"))).status_code
        == 200
    )


def test_expired_token_is_401(app: Flask, client: FlaskClient, make_user: Any, login: Any) -> None:
    make_user("oldie")
    tokens = login("oldie")
    with app.app_context():
        claims = decode_token(tokens["access_token"])
        expired = create_access_token(
            identity=claims["sub"],
            additional_claims={"sid": claims["sid"]},
            expires_delta=timedelta(seconds=-5),
        )
    response = client.get(ME, headers=bearer(expired))
    assert response.status_code == 401
    assert response.json["message"] == "Token has expired."


def test_missing_token_is_401_with_a_hint(client: FlaskClient) -> None:
    response = client.get(ME)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
