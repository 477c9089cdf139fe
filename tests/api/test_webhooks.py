"""My webhooks over HTTP: the secret once, the SSRF refusals, ownership, paging, ping."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from models.people.tables import Webhook, WebhookAttempt
from models.people.webhooks import record_attempt
from tests.helpers import bearer
from tests.webhook_sink import FakeDns, Sink, drain_notifications, verify

PUBLIC_URL = "http://93.184.216.34/hooks/botyard"  # a literal public address: no DNS needed
BASE = "/api/v1/me/webhooks"


@pytest.fixture
def use_settings(app: Flask) -> Iterator[Callable[..., None]]:
    """Run the app with some settings changed (restored afterwards)."""
    original = app.extensions["botyard.settings"]

    def use(**changes: Any) -> None:
        app.extensions["botyard.settings"] = original.replace(**changes)

    yield use
    app.extensions["botyard.settings"] = original


@pytest.fixture
def me(make_user: Callable[..., Any], login: Callable[..., Any]) -> tuple[Any, dict[str, str]]:
    user = make_user()
    return user, bearer(login(user.username)["access_token"])


def create(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"url": PUBLIC_URL, "events": ["bot.started"], **fields}
    return client.post(BASE, json=body, headers=headers)


def test_the_secret_is_shown_once_at_creation(client: FlaskClient, owner: dict[str, str]) -> None:
    created = create(client, owner, events=["bot.started", "bot.error"], description="ops")
    assert created.status_code == 201, created.json
    body = created.json
    secret = body["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 6 + 43  # 32 random bytes, base64
    assert body["events"] == ["bot.error", "bot.started"]
    assert body["is_active"] is True and body["consecutive_failures"] == 0
    listed = client.get(BASE, headers=owner)
    one = client.get(f"{BASE}/{body['id']}", headers=owner)
    patched = client.patch(f"{BASE}/{body['id']}", json={"description": "x"}, headers=owner)
    for response in (listed, one, patched):
        assert response.status_code == 200
        assert secret not in response.get_data(as_text=True)
        assert "secret" not in response.get_data(as_text=True)
    assert [item["id"] for item in listed.json["items"]] == [body["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.1:8080/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 form of 169.254.169.254
        "http://10.0.0.1/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://localhost:9099/hook",
    ],
)
def test_urls_that_reach_internal_addresses_are_refused(
    client: FlaskClient, owner: dict[str, str], url: str
) -> None:
    refused = create(client, owner, url=url)
    assert refused.status_code == 422, refused.json
    assert "only public addresses are allowed" in refused.json["message"]
    assert refused.json["errors"] == {"json": {"url": [refused.json["message"]]}}
    assert client.get(BASE, headers=owner).json["total"] == 0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://93.184.216.34/hook", "Only http and https"),
        ("file:///etc/passwd", "Only http and https"),
        ("http://user:pw@93.184.216.34/hook", "user name or password"),
        ("http://93.184.216.34:0/hook", "port"),
        ("http:///hook", "no host"),
        ("http://no-such-host.invalid/hook", "could not be resolved"),
        (PUBLIC_URL + "?" + "a" * 2048, "2048"),
    ],
)
def test_malformed_urls_are_refused(
    client: FlaskClient, owner: dict[str, str], url: str, words: str
) -> None:
    refused = create(client, owner, url=url)
    assert refused.status_code == 422
    assert words in str(refused.json), refused.json


def test_a_host_name_resolving_to_any_private_address_is_refused(
    client: FlaskClient, owner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns(monkeypatch)
    dns.names["hooks.example.test"] = "10.1.2.3"
    refused = create(client, owner, url="https://hooks.example.test/in")
    assert refused.status_code == 422
    # The name's private address is not echoed back.
    assert "10.1.2.3" not in refused.get_data(as_text=True)
    dns.names["hooks.example.test"] = "93.184.216.34"
    assert create(client, owner, url="https://hooks.example.test/in").status_code == 201


def test_loopback_is_allowed_only_by_the_setting_and_never_private_ranges(
    client: FlaskClient, owner: dict[str, str], use_settings: Callable[..., None]
) -> None:
    use_settings(webhook_allow_loopback=True)
    assert create(client, owner, url="http://127.0.0.1:9099/hook").status_code == 201
    assert create(client, owner, url="http://[::1]:9099/hook").status_code == 201
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://192.168.1.1/"):
        assert create(client, owner, url=url).status_code == 422


def test_bad_fields_are_422(client: FlaskClient, owner: dict[str, str]) -> None:
    assert create(client, owner, events=["no.such.event"]).status_code == 422
    assert create(client, owner, events=[]).status_code == 422
    assert create(client, owner, description="d" * 201).status_code == 422
    assert create(client, owner, secret="mine").status_code == 422  # unknown field
    assert client.post(BASE, json={"events": ["bot.started"]}, headers=owner).status_code == 422


def test_each_user_has_at_most_webhook_limit_webhooks(
    client: FlaskClient, owner: dict[str, str], use_settings: Callable[..., None]
) -> None:
    use_settings(webhook_limit=2)
    assert create(client, owner).status_code == 201
    assert create(client, owner).status_code == 201
    third = create(client, owner)
    assert third.status_code == 409 and "2 webhooks" in third.json["message"]


def test_someone_elses_webhook_is_404_everywhere(
    client: FlaskClient, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    hook_id = create(client, owner).json["id"]
    url = f"{BASE}/{hook_id}"
    assert client.get(url, headers=stranger).status_code == 404
    assert client.patch(url, json={"description": "x"}, headers=stranger).status_code == 404
    assert client.delete(url, headers=stranger).status_code == 404
    assert client.get(f"{url}/deliveries", headers=stranger).status_code == 404
    assert client.post(f"{url}/ping", headers=stranger).status_code == 404
    assert client.get(BASE, headers=stranger).json["items"] == []
    assert client.get(url, headers=owner).status_code == 200  # untouched
    missing = f"{BASE}/00000000-0000-0000-0000-000000000000"
    assert client.get(missing, headers=owner).status_code == 404


def test_update_pause_re_enable_and_delete(
    client: FlaskClient, owner: dict[str, str], db: Any
) -> None:
    hook_id = create(client, owner).json["id"]
    url = f"{BASE}/{hook_id}"
    changed = client.patch(url, json={"events": ["bot.error"], "description": "d"}, headers=owner)
    assert changed.status_code == 200
    assert (changed.json["events"], changed.json["description"]) == (["bot.error"], "d")
    paused = client.patch(url, json={"is_active": False}, headers=owner).json
    assert paused["is_active"] is False and paused["disabled_reason"] == "Paused by its owner."

    hook = db.get(Webhook, paused["id"])
    hook.consecutive_failures = 7
    hook.disabled_reason = "Disabled after 7 failed deliveries in a row."
    db.commit()
    enabled = client.patch(url, json={"is_active": True}, headers=owner).json
    assert enabled["is_active"] is True
    assert (enabled["consecutive_failures"], enabled["disabled_at"]) == (0, None)
    assert enabled["disabled_reason"] is None
    assert client.patch(url, json={"url": PUBLIC_URL}, headers=owner).status_code == 422

    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(url, headers=owner).status_code == 404


def test_re_enabling_checks_the_url_again(
    client: FlaskClient, owner: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dns = FakeDns(monkeypatch)
    dns.names["moving.example.test"] = "93.184.216.34"
    hook_id = create(client, owner, url="https://moving.example.test/").json["id"]
    client.patch(f"{BASE}/{hook_id}", json={"is_active": False}, headers=owner)
    dns.names["moving.example.test"] = "192.168.0.10"
    refused = client.patch(f"{BASE}/{hook_id}", json={"is_active": True}, headers=owner)
    assert refused.status_code == 422


def test_attempts_are_listed_newest_first_by_cursor(
    client: FlaskClient, owner: dict[str, str], db: Any
) -> None:
    hook = db.get(Webhook, create(client, owner).json["id"])
    for n in range(1, 6):
        record_attempt(hook, None, "ping", n, status_code=500, error="HTTP 500", duration_ms=n)
    db.commit()
    url = f"{BASE}/{hook.id}/deliveries"
    first = client.get(url, query_string={"limit": 2}, headers=owner).json
    assert [row["attempt"] for row in first["rows"]] == [5, 4]
    row = first["rows"][0]
    assert (row["succeeded"], row["status_code"], row["error"], row["event"]) == (
        False,
        500,
        "HTTP 500",
        "ping",
    )
    second = client.get(
        url, query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=owner
    ).json
    third = client.get(
        url, query_string={"limit": 2, "cursor": second["next_cursor"]}, headers=owner
    ).json
    assert [r["attempt"] for r in second["rows"] + third["rows"]] == [3, 2, 1]
    assert third["next_cursor"] is None
    assert client.get(url, query_string={"limit": 101}, headers=owner).status_code == 422


def test_a_ping_is_queued_signed_delivered_and_recorded(
    app: Flask,
    client: FlaskClient,
    owner: dict[str, str],
    db: Any,
    use_settings: Callable[..., None],
) -> None:
    use_settings(webhook_allow_loopback=True)
    with Sink() as sink:
        created = create(client, owner, url=sink.url("/ping-me"))
        secret, hook_id = created.json["secret"], created.json["id"]
        queued = client.post(f"{BASE}/{hook_id}/ping", headers=owner)
        assert queued.status_code == 202
        again = client.post(f"{BASE}/{hook_id}/ping", headers=owner)
        assert again.status_code == 429 and "pinged in the last 10 seconds" in again.json["message"]
        assert drain_notifications(app) is True
    [got] = sink.received
    assert got.path == "/ping-me"
    assert verify(secret, got.headers, got.body)
    assert got.headers["X-Botyard-Event"] == "ping"
    assert got.headers["X-Botyard-Delivery"] == queued.json["id"]
    rows = client.get(f"{BASE}/{hook_id}/deliveries", headers=owner).json["rows"]
    assert [(r["event"], r["succeeded"], r["status_code"], r["delivery_id"]) for r in rows] == [
        ("ping", True, 200, None)
    ]
    attempts = db.scalars(select(WebhookAttempt).where(WebhookAttempt.webhook_id == hook_id))
    assert len(attempts.all()) == 1
