"""The display and comparison forms of emails and usernames (models/identity/names.py)."""

from __future__ import annotations

import pytest

from models.identity import names


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("\uff41\uff4c\uff49\uff43\uff45\uff20example.com", "alice@example.com"),
        ("hans@B\u00fccher.de", "hans@xn--bcher-kva.de"),
        ("hans@XN--BCHER-KVA.de", "hans@xn--bcher-kva.de"),
        ("a@stra\u00dfe.de", "a@xn--strae-oqa.de"),  # IDNA 2008: not strasse.de
        ("STRASSE@x.org", "strasse@x.org"),
    ],
)
def test_email_keys(email: str, key: str) -> None:
    assert names.email_key(email) == key


@pytest.mark.parametrize(
    "login", ["a@[127.0.0.1]", "a@", "@", "a@b..c", "x" * 300 + "@a.b", "\x00@a"]
)
def test_email_key_never_raises(login: str) -> None:
    assert "@" in names.email_key(login)


def test_the_stored_email_keeps_the_local_part_as_typed() -> None:
    assert names.display_email(" Alice@Example.COM ") == "Alice@example.com"
    assert names.display_email("Hans@B\u00fccher.de") == "Hans@xn--bcher-kva.de"


def test_usernames_fold_to_their_key() -> None:
    assert names.username_key("Alice.B-1") == "alice.b-1"
    assert names.username_key("\uff21\uff4c\uff49\uff43\uff45") == "alice"
    assert names.username_key("al\u0130ce") != "alice"  # refused at registration instead


def test_internal_domains_are_well_formed_but_not_public() -> None:
    assert names.email_problem("admin@botyard.local") is None
    assert names.public_email_problem("admin@botyard.local") is not None
    assert names.public_email_problem("someone@example.com") is None


def test_the_stored_form_must_fit_the_column() -> None:
    long_domain = ".".join(["\u00fc" * 20] * 11) + ".de"  # each label grows to 26 in ASCII
    assert len(f"a@{long_domain}") <= 254
    assert names.email_problem(f"a@{long_domain}") is not None
