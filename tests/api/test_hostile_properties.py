"""Every operation of the OpenAPI document, fed hostile input: never a 500, always the one shape.

The operations come from /api/openapi.json itself, so a new endpoint is covered the day it
is added. Each field of a JSON body and each query parameter gets every value of a fixed
hostile list (as JSON text, so ``1e309`` and ``10**400`` arrive as written), then
hypothesis builds nested hostile bodies at random. Bounded: a fixed list plus a few
dozen random examples per operation, no shrinking database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import db as database
from tests.api.conftest import BOT

# Values as JSON text: each replaces one field of an otherwise plausible body.
JSON_VALUES = [
    '"\\u0000"',
    '"a\\u0000b"',
    '"\\ud800"',
    '"x\\udfff"',
    '"\\u202eevil\\u202c"',  # right-to-left override
    '"\\u200f\\u200e"',  # RTL and LTR marks
    '"e\\u0301\\u0301\\u0301"',  # combining accents
    '"\\ud83d\\ude80\\ud83e\\udd16"',  # emoji (a valid surrogate pair)
    '"\\uff21\\uff22\\uff23"',  # full-width
    '""',
    '" "',
    "[]",
    "{}",
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "1e309",
    "-1e309",
    "1" + "0" * 400,
    "-" + "9" * 30,
    "9223372036854775808",
    '"' + "x" * 5000 + '"',
    "[" * 40 + "]" * 40,
    '{"a":' * 40 + "1" + "}" * 40,
    '{"\\u0000": 1}',
    '["\\u0000", {"k\\u0000": "v"}]',
    '"0001-01-01T00:00:00+05:00"',
    '"9999-12-31T23:59:59-05:00"',
    '"2026-01-01T00:00:00Z"',
    '"not-a-uuid"',
]

# Whole bodies, as sent.
RAW_BODIES = [
    "[" * 30000,
    '{"a":' * 10000,
    "null",
    "[]",
    '"text"',
    "1e309",
    "{",
    "",
    '{"\\u0000": "\\u0000"}',
]

QUERY_VALUES = [
    "\x00",
    "a\x00b",
    "",
    " ",
    "\u202e",
    "e\u0301",
    "\U0001f680",
    "\uff21\uff22",
    "1e309",
    "1" + "0" * 400,
    "-1",
    "0",
    "NaN",
    "true",
    "[]",
    "9223372036854775808",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "x" * 2000,
    "%",
]

# A plausible body per operation, so that a hostile field meets the validation of the
# others' real values (and, where they are all valid, the view itself).
SPAN = {"start": "2025-12-26T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
BASE_BODIES: dict[str, dict[str, Any]] = {
    "login": {"login": "nobody", "password": "wrong-password"},
    "register": {"email": "new@example.com", "username": "newbie", "password": "p" * 12},
    "forgotPassword": {"email": "nobody@example.com"},
    "resetPassword": {"token": "t" * 20, "new_password": "p" * 12},
    "changePassword": {"current_password": "wrong", "new_password": "p" * 12},
    "setUserRoles": {"roles": ["user"]},
    "createBot": dict(BOT),
    "updateBot": {"name": "renamed", "schedule": {"start_at": "2026-02-01T00:00:00Z"}},
    "createBacktest": {"symbol": "BTC-USD", "strategy": BOT["strategy"], **SPAN},
}

# Operations that end the caller's session would blind the rest of the run.
SKIPPED = {"logout", "revokeOtherSessions", "revokeSession", "refreshTokens"}


def assert_shape(response: Any, what: str) -> None:
    """Below 500, and an error in the one shape."""
    assert response.status_code < 500, (what, response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        body = response.json
        assert isinstance(body, dict), (what, response.get_data()[:300])
        assert body["code"] == response.status_code, (what, body)
        assert body["status"] and body["message"] and body["request_id"], (what, body)
        assert isinstance(body.get("errors", {}), dict), (what, body)


class Operations:
    """The document's operations with real path arguments, and the caller's headers."""

    def __init__(self, client: FlaskClient, headers: dict[str, str], ids: dict[str, str]) -> None:
        self.client, self.headers, self.ids = client, headers, ids
        self.spec = client.get("/api/openapi.json").json

    def each(self) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
        """(method, url, operationId, operation) for every operation not skipped."""
        for template, item in self.spec["paths"].items():
            url = template
            for name, value in self.ids.items():
                url = url.replace("{" + name + "}", value)
            for method, op in item.items():
                if method != "parameters" and op.get("operationId") not in SKIPPED:
                    yield method.upper(), url, op["operationId"], op

    def send(self, method: str, url: str, body: str | None = None) -> Any:
        """One request with the caller's headers; a body is sent as JSON text."""
        if body is None:
            response = self.client.open(url, method=method, headers=self.headers)
        else:
            response = self.client.open(
                url,
                method=method,
                data=body.encode(),
                content_type="application/json",
                headers=self.headers,
            )
        # As at the end of a real request's app context (the test's one spans them all): a
        # request refused on a constraint must not leave its failed transaction to the next.
        database.session.remove()
        return response


@pytest.fixture
def operations(client: FlaskClient, admin_headers: dict[str, str], instruments: None) -> Operations:
    made = client.post("/api/v1/bots", json=BOT, headers=admin_headers)
    assert made.status_code == 201, made.json
    me = client.get("/api/v1/me", headers=admin_headers).json
    ids = {
        "bot_id": made.json["id"],
        "user_id": me["id"],
        "symbol": "BTC-USD",
        "backtest_id": "00000000-0000-4000-8000-000000000000",
        "session_id": "00000000-0000-4000-8000-000000000000",
        "username": me["username"],
    }
    return Operations(client, admin_headers, ids)


def _with(base: dict[str, Any], field: str, fragment: str) -> str:
    placeholder = "\x01HOSTILE\x01"
    text = json.dumps({**base, field: placeholder})
    return text.replace(json.dumps(placeholder), fragment)


def test_every_body_field_and_query_parameter_survives_the_hostile_list(
    operations: Operations,
) -> None:
    sent = 0
    for method, url, op_id, op in operations.each():
        if "requestBody" in op:
            base = BASE_BODIES.get(op_id, {})
            content = op["requestBody"]["content"]["application/json"]["schema"]
            fields = set(base) | set(_properties(operations.spec, content)) | {"unknown_field"}
            for field in sorted(fields):
                for fragment in JSON_VALUES:
                    response = operations.send(method, url, _with(base, field, fragment))
                    assert_shape(response, f"{op_id} {field}={fragment[:40]}")
                    sent += 1
            for raw in RAW_BODIES:
                assert_shape(operations.send(method, url, raw), f"{op_id} raw {raw[:10]}")
                sent += 1
            assert_shape(operations.send(method, url), f"{op_id} without a body")
        for param in op.get("parameters", []):
            if param["in"] != "query" or op_id == "streamMarket":
                continue  # the stream answers 200 and stays open: its query is checked first
            for value in QUERY_VALUES:
                query = f"?{param['name']}={quote(value, safe='')}"
                assert_shape(operations.send(method, url + query), f"{op_id} {param['name']}")
                sent += 1
    assert sent > 1000  # the document did give us operations to attack


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return dict(schema.get("properties", {}))


HOSTILE_TEXT = st.sampled_from(
    ["\x00", "\ud800", "\u202e", "e\u0301", "\U0001f680", "\uff21", "", " " * 3]
) | st.text(max_size=20)
HOSTILE_LEAF = (
    HOSTILE_TEXT
    | st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
)
HOSTILE_JSON = st.recursive(
    HOSTILE_LEAF,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(HOSTILE_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def test_random_nested_bodies_on_every_body_operation(operations: Operations) -> None:
    targets = [(m, u, i, op) for m, u, i, op in operations.each() if "requestBody" in op]
    assert targets

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        index=st.integers(0, len(targets) - 1),
        patch=st.dictionaries(HOSTILE_TEXT, HOSTILE_JSON, max_size=4),
        whole=st.booleans(),
    )
    def check(index: int, patch: dict[str, Any], whole: bool) -> None:
        method, url, op_id, _op = targets[index]
        body = patch if whole else {**BASE_BODIES.get(op_id, {}), **patch}
        # ensure_ascii keeps lone surrogates sendable, as \ud800 escapes
        assert_shape(operations.send(method, url, json.dumps(body)), op_id)

    check()
