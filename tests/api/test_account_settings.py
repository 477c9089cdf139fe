"""Account settings: the whole document, strict validation, diff storage, trading defaults."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from models.people.events import EVENTS
from models.people.preferences import default_settings
from models.people.tables import AccountSettings, Activity
from tests.helpers import bearer

URL = "/api/v1/me/settings"
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DAY = 86_400_000
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}


@pytest.fixture
def me(make_user: Callable[..., Any], login: Callable[..., dict[str, Any]]) -> Any:
    user = make_user()
    user.headers = bearer(login(user.username)["access_token"])
    return user


def stored(db: Any, user_id: Any) -> dict[str, Any] | None:
    db.expire_all()
    row = db.get(AccountSettings, user_id)
    return None if row is None else dict(row.document)


def test_get_returns_the_defaults_whole(client: FlaskClient, me: Any) -> None:
    response = client.get(URL, headers=me.headers)
    assert response.status_code == 200
    assert response.json == default_settings()
    assert set(response.json["notifications"]) == set(EVENTS)
    assert response.json["trading_defaults"] == {
        "initial_capital": 10_000.0,
        "fee": 0.001,
        "slippage_bps": 5.0,
    }


def test_patch_merges_and_stores_only_the_differences(
    client: FlaskClient, db: Any, me: Any
) -> None:
    response = client.patch(
        URL,
        json={
            "notifications": {"bot.trade": {"in_app": True}},
            "email_digest": "daily",
            "trading_defaults": {"fee": 0.0005},
        },
        headers=me.headers,
    )
    assert response.status_code == 200, response.json
    expected = default_settings()
    expected["notifications"]["bot.trade"]["in_app"] = True
    expected["email_digest"] = "daily"
    expected["trading_defaults"]["fee"] = 0.0005
    assert response.json == expected
    assert client.get(URL, headers=me.headers).json == expected
    assert stored(db, me.id) == {
        "notifications": {"bot.trade": {"in_app": True}},
        "email_digest": "daily",
        "trading_defaults": {"fee": 0.0005},
    }
    # Setting a value back to its default drops it from storage.
    back = client.patch(
        URL, json={"email_digest": "off", "trading_defaults": {"fee": 0.001}}, headers=me.headers
    )
    assert back.status_code == 200
    assert stored(db, me.id) == {"notifications": {"bot.trade": {"in_app": True}}}

    verbs = db.scalars(
        select(Activity)
        .where(Activity.actor_id == me.id, Activity.verb == "settings.changed")
        .order_by(Activity.id)
    ).all()
    assert [row.data["keys"] for row in verbs] == [
        ["email_digest", "notifications", "trading_defaults"],
        ["email_digest", "trading_defaults"],
    ]
    # A PATCH that changes nothing records nothing.
    assert client.patch(URL, json={}, headers=me.headers).status_code == 200
    assert client.patch(URL, json={"email_digest": "off"}, headers=me.headers).status_code == 200
    assert len(db.scalars(select(Activity).where(Activity.verb == "settings.changed")).all()) == 2


def test_put_replaces_the_whole_document(client: FlaskClient, db: Any, me: Any) -> None:
    client.patch(URL, json={"email_digest": "daily"}, headers=me.headers)
    document = default_settings()
    document["profile_visibility"] = "private"
    document["default_bot_visibility"] = "unlisted"
    document["notifications"]["backtest.finished"] = {
        "in_app": False,
        "email": False,
        "webhook": True,
        "digest": True,
    }
    response = client.put(URL, json=document, headers=me.headers)
    assert response.status_code == 200, response.json
    assert response.json == document  # email_digest back to its default: PUT replaces
    assert stored(db, me.id) == {
        "profile_visibility": "private",
        "default_bot_visibility": "unlisted",
        "notifications": {"backtest.finished": {"in_app": False, "email": False, "digest": True}},
    }


def _without(document: dict[str, Any], *path: str) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    target = copied
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return copied


@pytest.mark.parametrize(
    "path",
    [
        ("email_digest",),
        ("notifications",),
        ("notifications", "bot.error"),
        ("notifications", "bot.error", "webhook"),
        ("trading_defaults", "slippage_bps"),
    ],
)
def test_put_needs_every_key_at_every_level(client: FlaskClient, me: Any, path: Any) -> None:
    response = client.put(URL, json=_without(default_settings(), *path), headers=me.headers)
    assert response.status_code == 422
    errors = response.json["errors"]["json"]
    for key in path:
        errors = errors[key]
    assert errors == ["Missing data for required field."]


def _nest(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body: Any = value
    for key in reversed(path):
        body = {key: body}
    return dict(body)


BAD = [
    (("colour",), "blue"),
    (("notifications", "bot.exploded"), {"in_app": True}),
    (("notifications", "bot.error", "sms"), True),
    (("trading_defaults", "leverage"), 3),
    (("notifications", "bot.error", "email"), "true"),
    (("notifications", "bot.error", "email"), 1),
    (("notifications", "bot.error", "email"), None),
    (("notifications", "bot.error"), True),
    (("notifications",), []),
    (("email_digest",), "weekly"),
    (("email_digest",), None),
    (("profile_visibility",), "unlisted"),
    (("default_bot_visibility",), "secret"),
    (("trading_defaults", "fee"), "0.001"),
    (("trading_defaults", "fee"), True),
    (("trading_defaults", "fee"), 0.06),
    (("trading_defaults", "fee"), -0.001),
    (("trading_defaults", "initial_capital"), 0),
    (("trading_defaults", "initial_capital"), 2e9),
    (("trading_defaults", "slippage_bps"), 501),
    (("trading_defaults",), None),
]


@pytest.mark.parametrize(("path", "value"), BAD)
def test_bad_keys_and_values_are_422_with_field_errors(
    client: FlaskClient, db: Any, me: Any, path: tuple[str, ...], value: Any
) -> None:
    patched = client.patch(URL, json=_nest(path, value), headers=me.headers)
    assert patched.status_code == 422, patched.json
    errors = patched.json["errors"]["json"]
    for key in path:
        errors = errors[key]
    # A value that should be an object is refused under its own key too.
    assert (isinstance(errors, list) and errors) or errors == {"_schema": ["Invalid input type."]}
    whole = default_settings()
    target: Any = whole
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert client.put(URL, json=whole, headers=me.headers).status_code == 422
    assert stored(db, me.id) is None


def test_nan_and_non_objects_are_refused(client: FlaskClient, me: Any) -> None:
    raw = '{"trading_defaults": {"fee": NaN}}'
    headers = {**me.headers, "Content-Type": "application/json"}
    assert client.patch(URL, data=raw, headers=headers).status_code in (400, 422)
    for body in ([], "daily", 3):
        assert client.patch(URL, data=json.dumps(body), headers=headers).status_code == 422


@pytest.mark.parametrize("event", [name for name, spec in EVENTS.items() if spec.security])
def test_security_events_cannot_stop_emailing(
    client: FlaskClient, db: Any, me: Any, event: str
) -> None:
    response = client.patch(
        URL, json={"notifications": {event: {"email": False}}}, headers=me.headers
    )
    assert response.status_code == 422
    assert response.json["errors"]["json"]["notifications"][event]["email"] == [
        "Security events are always emailed."
    ]
    whole = default_settings()
    whole["notifications"][event]["email"] = False
    assert client.put(URL, json=whole, headers=me.headers).status_code == 422
    # Its other channels are the user's to choose.
    quiet = client.patch(
        URL,
        json={"notifications": {event: {"in_app": False, "webhook": False}}},
        headers=me.headers,
    )
    assert quiet.status_code == 200
    assert quiet.json["notifications"][event] == {
        "in_app": False,
        "email": True,
        "webhook": False,
        "digest": False,
    }


def test_settings_are_each_users_own(
    client: FlaskClient, db: Any, me: Any, stranger: dict[str, str]
) -> None:
    client.patch(URL, json={"profile_visibility": "private"}, headers=me.headers)
    assert client.get(URL, headers=stranger).json == default_settings()
    assert client.get(URL).status_code == 401
    assert client.put(URL, json=default_settings()).status_code == 401
    assert client.patch(URL, json={}).status_code == 401


def test_trading_defaults_fill_in_new_bots(client: FlaskClient, instruments: None, me: Any) -> None:
    body = {"name": "plain", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    before = client.post("/api/v1/bots", json=body, headers=me.headers)
    assert before.status_code == 201, before.json
    assert (before.json["initial_capital"], before.json["fee"], before.json["slippage_bps"]) == (
        10_000.0,
        0.001,
        5.0,
    )
    mine = {"initial_capital": 2500.0, "fee": 0.0002, "slippage_bps": 1.5}
    assert client.patch(URL, json={"trading_defaults": mine}, headers=me.headers).status_code == 200
    after = client.post("/api/v1/bots", json={**body, "name": "mine"}, headers=me.headers)
    assert after.status_code == 201
    assert {k: after.json[k] for k in mine} == mine
    given = client.post(
        "/api/v1/bots", json={**body, "name": "given", "fee": 0.003}, headers=me.headers
    )
    assert (given.json["initial_capital"], given.json["fee"]) == (2500.0, 0.003)
    # A PATCH of a bot never re-applies defaults.
    bot_url = f"/api/v1/bots/{before.json['id']}"
    patched = client.patch(bot_url, json={"name": "renamed"}, headers=me.headers)
    assert patched.json["initial_capital"] == 10_000.0


def test_trading_defaults_fill_in_inline_backtests_but_not_a_bots(
    client: FlaskClient, instruments: None, me: Any
) -> None:
    mine = {"initial_capital": 777.0, "fee": 0.0004, "slippage_bps": 9.0}
    assert client.patch(URL, json={"trading_defaults": mine}, headers=me.headers).status_code == 200
    span = {"start": END - 5 * DAY, "end": END}
    inline = client.post(
        "/api/v1/backtests",
        json={"symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA, **span},
        headers=me.headers,
    )
    assert inline.status_code == 202, inline.json
    assert {k: inline.json["spec"][k] for k in mine} == mine
    partly = client.post(
        "/api/v1/backtests",
        json={"symbol": "BTC-USD", "strategy": SMA, "slippage_bps": 0, **span},
        headers=me.headers,
    )
    assert partly.json["spec"]["slippage_bps"] == 0.0
    assert partly.json["spec"]["initial_capital"] == 777.0
    for queued in (inline, partly):  # within the quota of queued backtests
        assert client.delete(queued.headers["Location"], headers=me.headers).status_code == 200

    bot = client.post(
        "/api/v1/bots",
        json={"name": "b", "symbol": "BTC-USD", "strategy": SMA, "initial_capital": 50_000},
        headers=me.headers,
    ).json
    of_bot = client.post(
        "/api/v1/backtests", json={"bot_id": bot["id"], **span}, headers=me.headers
    )
    assert of_bot.status_code == 202, of_bot.json
    spec = of_bot.json["spec"]
    # The bot got its fee and slippage from the settings when it was made; capital it gave.
    assert (spec["initial_capital"], spec["fee"], spec["slippage_bps"]) == (50_000.0, 0.0004, 9.0)
