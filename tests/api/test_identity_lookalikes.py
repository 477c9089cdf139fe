"""Look-alike identities: one account per email and username, however they are written.

Emails and usernames are NFKC-normalised and case-folded for comparison, usernames are
ASCII, and a new account's email must be on a public domain (models/identity/names.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import PASSWORD, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
FULLWIDTH_ALICE = "\uff41\uff4c\uff49\uff43\uff45"  # "alice" in full-width letters
DOTTED_I_ALICE = "al\u0130ce"  # capital I with a dot above: folds to "i" + U+0307, not "i"
CYRILLIC_A_ALICE = "\u0430lice"  # Cyrillic small a


def register(client: FlaskClient, email: str, username: str) -> Any:
    return client.post(REGISTER, json={"email": email, "username": username, "password": PASSWORD})


def assert_error(response: Any, status: int, field: str | None = None) -> None:
    """The one error shape, with a field error when ``field`` is given."""
    assert response.status_code == status, response.json
    body = response.json
    assert body["code"] == status and body["status"] and body["message"] and body["request_id"]
    if field is not None:
        assert set(body["errors"]["json"]) == {field}, body


@pytest.fixture
def alice(client: FlaskClient) -> dict[str, Any]:
    response = register(client, "alice@example.com", "alice")
    assert response.status_code == 201, response.json
    return dict(response.json or {})


def test_the_reported_lookalike_emails_are_refused(
    client: FlaskClient, alice: dict[str, Any]
) -> None:
    fullwidth = register(client, f"{FULLWIDTH_ALICE}@example.com", "alice_two")
    assert_error(fullwidth, 409)
    assert fullwidth.json["message"] == "That email is already registered."
    assert_error(register(client, f"{DOTTED_I_ALICE}@example.com", "alice_three"), 422, "email")
    assert_error(register(client, "a@localhost", "alice_four"), 422, "email")
    assert_error(register(client, "a@[127.0.0.1]", "alice_five"), 422, "email")


@pytest.mark.parametrize(
    "email",
    [
        "ALICE@EXAMPLE.COM",
        "Alice@Example.com",
        f"{FULLWIDTH_ALICE}@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
        f"{FULLWIDTH_ALICE}\uff20example.com",  # a full-width at sign too
        " alice@example.com ",
    ],
)
def test_case_and_width_variants_of_an_email_conflict(
    client: FlaskClient, alice: dict[str, Any], email: str
) -> None:
    assert_error(register(client, email, "someone_else"), 409)


@pytest.mark.parametrize("username", ["ALICE", "Alice", FULLWIDTH_ALICE, " alice "])
def test_case_and_width_variants_of_a_username_conflict(
    client: FlaskClient, alice: dict[str, Any], username: str
) -> None:
    response = register(client, "other@example.com", username)
    assert_error(response, 409)
    assert response.json["message"] == "That username is already registered."


@pytest.mark.parametrize(
    "username",
    [DOTTED_I_ALICE, CYRILLIC_A_ALICE, "-alice", "_alice", ".alice", "al ice", "al/ice", "ab"],
)
def test_usernames_outside_the_safe_set_are_refused(client: FlaskClient, username: str) -> None:
    assert_error(register(client, "new@example.com", username), 422, "username")


@pytest.mark.parametrize(
    "email",
    [
        "a@127.0.0.1",  # an IP address, not a name
        "a@[IPv6:::1]",
        "a@intranet",  # a single label
        "a@localhost",
        "a@mail.localhost",
        "a@botyard.local",  # mDNS
        "a@site.test",
        "a@site.example",
        "a@nowhere.invalid",
        "a@hidden.onion",
        "a@host.internal",
        "a@router.home.arpa",
        "a@exa_mple.com",
        "a@example.com.",
        "a@-example.com",
        "a@example.c0m",
        f"{CYRILLIC_A_ALICE}@example.com",  # the local part must be ASCII
    ],
)
def test_emails_off_the_public_internet_are_refused(client: FlaskClient, email: str) -> None:
    assert_error(register(client, email, "newcomer"), 422, "email")


def test_a_username_is_shown_as_typed(client: FlaskClient) -> None:
    response = register(client, "Mixed.Case@Example.COM", "Mixed.Case-1")
    assert response.status_code == 201, response.json
    assert response.json["username"] == "Mixed.Case-1"
    assert response.json["email"] == "Mixed.Case@example.com"


def test_a_fullwidth_username_is_stored_in_ascii(client: FlaskClient) -> None:
    response = register(client, "wide@example.com", FULLWIDTH_ALICE)
    assert response.status_code == 201, response.json
    assert response.json["username"] == "alice"


def test_an_international_domain_is_stored_in_its_ascii_form(client: FlaskClient) -> None:
    response = register(client, "hans@B\u00fccher.de", "hans")
    assert response.status_code == 201, response.json
    assert response.json["email"] == "hans@xn--bcher-kva.de"
    assert_error(register(client, "HANS@xn--bcher-kva.de", "hans_two"), 409)
    me = _login(client, "hans@b\u00fccher.DE")
    assert me["username"] == "hans"


def _login(client: FlaskClient, login: str) -> dict[str, Any]:
    response = client.post(LOGIN, json={"login": login, "password": PASSWORD})
    assert response.status_code == 200, (login, response.json)
    me = client.get("/api/v1/me", headers=bearer(response.json["access_token"]))
    return dict(me.json or {})


@pytest.mark.parametrize(
    "login",
    [
        "alice",
        "ALICE",
        "\uff21\uff2c\uff29\uff23\uff25",  # "ALICE" in full-width letters
        "alice@example.com",
        "ALICE@Example.COM",
        f"{FULLWIDTH_ALICE}\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
    ],
)
def test_login_variants_find_the_same_account(
    client: FlaskClient, alice: dict[str, Any], login: str
) -> None:
    assert _login(client, login)["id"] == alice["id"]


@pytest.mark.parametrize(
    "login", [DOTTED_I_ALICE, CYRILLIC_A_ALICE, f"{DOTTED_I_ALICE}@example.com"]
)
def test_lookalikes_that_do_not_fold_find_no_account(
    client: FlaskClient, alice: dict[str, Any], login: str
) -> None:
    response = client.post(LOGIN, json={"login": login, "password": PASSWORD})
    assert_error(response, 401)


@pytest.mark.parametrize("login", ["ali\x00ce", "alice\x00@example.com"])
def test_a_login_with_a_nul_byte_is_a_client_error(
    client: FlaskClient, alice: dict[str, Any], login: str
) -> None:
    response = client.post(LOGIN, json={"login": login, "password": PASSWORD})
    assert 400 <= response.status_code < 500, response.json  # was a 500 from Postgres
    assert response.json["code"] == response.status_code


def test_password_forgot_takes_internal_domains_it_only_looks_up(client: FlaskClient) -> None:
    # The development seed's accounts live on botyard.local: they can still ask for a reset.
    response = client.post("/api/v1/auth/password/forgot", json={"email": "admin@botyard.local"})
    assert response.status_code == 202, response.json
