"""Hostile input is a 4xx in the one error shape, never a 500 (issue 12, item 4).

Named cases first; test_hostile_properties.py then feeds every operation of the document.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator

from api.input_guard import MAX_JSON_DEPTH, json_depth
from tests.api.conftest import BOT

BODY_OPERATIONS = [
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/password/forgot"),
    ("POST", "/api/v1/auth/password/reset"),
    ("POST", "/api/v1/auth/password/change"),
    ("POST", "/api/v1/bots"),
    ("POST", "/api/v1/backtests"),
]


def assert_error(response: Any, status: int) -> dict[str, Any]:
    """``response`` is ``status`` in the one error shape; returns its body."""
    body = response.json
    assert response.status_code == status, body
    assert body["code"] == status and body["status"] and body["message"], body
    assert body["request_id"] == response.headers["X-Request-ID"]
    return dict(body)


@pytest.fixture
def bot_id(client: FlaskClient, owner: dict[str, str], instruments: None) -> str:
    response = client.post("/api/v1/bots", json=BOT, headers=owner)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


@pytest.mark.parametrize("method,path", BODY_OPERATIONS)
@pytest.mark.parametrize("opening", ["[", '{"a":', '{"a":['])
def test_deep_nesting_is_400(
    client: FlaskClient, owner: dict[str, str], method: str, path: str, opening: str
) -> None:
    response = client.open(
        path,
        method=method,
        data=opening * (60000 // len(opening)),  # under the 64 KiB body limit
        content_type="application/json",
        headers=owner,
    )
    body = assert_error(response, 400)
    assert f"deeper than {MAX_JSON_DEPTH}" in body["message"]
    assert body["errors"]["json"]


def test_nesting_is_measured_outside_strings() -> None:
    assert json_depth(b'{"a": "' + b"[" * 100 + b'"}') == 1
    assert json_depth(b'{"a": "\\"' + b"[" * 100 + b'"}') == 1
    # An escaped backslash ends before the quote: the brackets after it count.
    assert json_depth(b'{"a": "\\\\"' + b", [" * 40 + b"]" * 40 + b"}") == MAX_JSON_DEPTH + 1
    assert json_depth(b"[" + b"[], " * 100 + b"[]]") == 2  # many brackets, shallow
    assert json_depth(b"[" * 33 + b"]" * 33) == 33


def test_brackets_inside_strings_are_text(
    client: FlaskClient, owner: dict[str, str], instruments: None
) -> None:
    response = client.post(
        "/api/v1/bots", json={**BOT, "description": "[" * 1000 + "{" * 1000}, headers=owner
    )
    assert response.status_code == 201, response.json


@pytest.mark.parametrize(
    "text",
    ["1e309", "-1e309", "NaN", "Infinity", "1" + "0" * 5000, "[1, ]", '{"a" 1}', "\xff"],
)
def test_numbers_and_json_the_api_cannot_read_are_400(
    client: FlaskClient, owner: dict[str, str], text: str
) -> None:
    data = ('{"name": ' + text + "}").encode("latin-1")
    response = client.post(
        "/api/v1/bots", data=data, content_type="application/json", headers=owner
    )
    assert_error(response, 400)


@pytest.mark.parametrize(
    "path,field",
    [
        ("/api/v1/market/instruments?q=%00", "q"),
        ("/api/v1/bots?q=a%00b", "q"),
        ("/api/v1/admin/users?q=%00", "q"),
        ("/api/v1/backtests?status=%00", "status"),
        ("/api/v1/market/instruments/BTC-USD/candles?cursor=%00", "cursor"),
    ],
)
def test_nul_in_a_query_is_422_naming_it(
    client: FlaskClient, admin_headers: dict[str, str], path: str, field: str
) -> None:
    body = assert_error(client.get(path, headers=admin_headers), 422)
    assert field in body["errors"]["query"]


def test_nul_in_a_path_is_422_naming_it(client: FlaskClient, owner: dict[str, str]) -> None:
    body = assert_error(client.get("/api/v1/market/instruments/%00/quote", headers=owner), 422)
    assert "symbol" in body["errors"]["path"]


@pytest.mark.parametrize(
    "change,where",
    [
        ({"name": "bot\x00"}, ["name"]),
        ({"symbol": "\x00"}, ["symbol"]),
        ({"description": "\ud800"}, ["description"]),
        ({"strategy": {"template": "sma_crossover", "params": {"fa\x00st": 3}}}, None),
        ({"strategy": {"rules": {"all": ["\x00"]}}}, None),
    ],
)
def test_bad_text_in_a_body_is_422_naming_the_field(
    client: FlaskClient, owner: dict[str, str], change: dict[str, Any], where: list[str] | None
) -> None:
    data = json.dumps({**BOT, **change})  # escapes NUL as \u0000 and keeps the lone surrogate
    response = client.post(
        "/api/v1/bots", data=data, content_type="application/json", headers=owner
    )
    body = assert_error(response, 422)
    errors = body["errors"]["json"]
    for key in where or list(change):
        assert key in errors, errors


def test_nul_in_a_login_is_422(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/login", json={"login": "a\x00", "password": "x"})
    assert "login" in assert_error(response, 422)["errors"]["json"]


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:01Z",
    ],
)
def test_schedule_times_outside_the_range_are_422(
    client: FlaskClient, owner: dict[str, str], bot_id: str, when: str
) -> None:
    for field in ("start_at", "stop_at"):
        response = client.patch(
            f"/api/v1/bots/{bot_id}", json={"schedule": {field: when}}, headers=owner
        )
        errors = assert_error(response, 422)["errors"]["json"]
        assert field in errors["schedule"], errors


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:01Z",
        "4102444800001",
        "-1",
        "9" * 5000,
    ],
)
def test_iso_and_epoch_times_share_one_range(
    client: FlaskClient, owner: dict[str, str], instruments: None, value: str
) -> None:
    candles = client.get(f"/api/v1/market/instruments/BTC-USD/candles?start={value}", headers=owner)
    assert "start" in assert_error(candles, 422)["errors"]["query"]
    spec = {"symbol": "BTC-USD", "strategy": BOT["strategy"], "start": value, "end": value}
    backtest = client.post("/api/v1/backtests", json=spec, headers=owner)
    assert "start" in assert_error(backtest, 422)["errors"]["json"]


def test_patch_without_a_body_is_422(
    client: FlaskClient, owner: dict[str, str], bot_id: str
) -> None:
    body = assert_error(client.patch(f"/api/v1/bots/{bot_id}", headers=owner), 422)
    assert body["errors"]["json"]["_schema"] == ["This request needs a JSON body."]
    empty_json = client.patch(
        f"/api/v1/bots/{bot_id}", data="", content_type="application/json", headers=owner
    )
    assert_error(empty_json, 422)


def test_patch_with_an_empty_object_changes_nothing(
    client: FlaskClient, owner: dict[str, str], bot_id: str
) -> None:
    before = client.get(f"/api/v1/bots/{bot_id}", headers=owner).json
    response = client.patch(f"/api/v1/bots/{bot_id}", json={}, headers=owner)
    assert response.status_code == 200
    after = client.get(f"/api/v1/bots/{bot_id}", headers=owner).json
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


def test_post_and_put_without_a_body_are_422(
    client: FlaskClient, admin_headers: dict[str, str], make_user: Any
) -> None:
    user = make_user()
    put = client.put(f"/api/v1/admin/users/{user.id}/roles", headers=admin_headers)
    assert assert_error(put, 422)["errors"]["json"]["_schema"]
    assert_error(client.post("/api/v1/auth/login"), 422)


def _valid_per_document(spec: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    validator = OAS30Validator({**schema, "components": spec["components"]})
    return bool(validator.is_valid(value))


def _body_schema(spec: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    op = spec["paths"][path][method]
    return dict(op["requestBody"]["content"]["application/json"]["schema"])


def _query_schema(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    params = spec["paths"][path]["get"]["parameters"]
    return dict(next(p["schema"] for p in params if p["name"] == name))


def test_the_document_and_the_server_agree_on_schemathesis_findings(
    client: FlaskClient, owner: dict[str, str], bot_id: str
) -> None:
    """Each value schemathesis sent as valid is invalid by the document and refused (422)."""
    spec = client.get("/api/openapi.json").json
    candles = "/api/v1/market/instruments/{symbol}/candles"
    logs = "/api/v1/bots/{bot_id}/logs"
    equity = "/api/v1/bots/{bot_id}/equity"
    for path, url, name in [
        (candles, "/api/v1/market/instruments/BTC-USD/candles", "cursor"),
        (logs, f"/api/v1/bots/{bot_id}/logs", "since"),
        (candles, "/api/v1/market/instruments/BTC-USD/candles", "start"),
        (equity, f"/api/v1/bots/{bot_id}/equity", "cursor"),
    ]:
        assert not _valid_per_document(spec, _query_schema(spec, path, name), ""), name
        response = client.get(f"{url}?{name}=", headers=owner)
        assert name in assert_error(response, 422)["errors"]["query"]

    bots = _body_schema(spec, "/api/v1/bots", "post")
    window = {"start": "09:00", "end": "17:00"}
    refused = [
        {**BOT, "strategy": {}},
        {**BOT, "schedule": {"windows": [{**window, "days": []}]}},
        {**BOT, "schedule": {"windows": [{**window, "start": None}]}},
        {**BOT, "schedule": {"windows": [{**window, "end": None}]}},
    ]
    for body in refused:
        assert not _valid_per_document(spec, bots, body), body
        assert_error(client.post("/api/v1/bots", json=body, headers=owner), 422)
    backtests = _body_schema(spec, "/api/v1/backtests", "post")
    for field in ("start", "end"):
        body = {"bot_id": bot_id, "start": 1767225600000, "end": 1767312000000, field: None}
        assert not _valid_per_document(spec, backtests, body), field
        assert_error(client.post("/api/v1/backtests", json=body, headers=owner), 422)
    # What the document calls valid, the server takes.
    accepted = {**BOT, "name": "agreed", "schedule": {"windows": [{**window, "days": ["mon"]}]}}
    assert _valid_per_document(spec, bots, accepted)
    assert client.post("/api/v1/bots", json=accepted, headers=owner).status_code == 201
