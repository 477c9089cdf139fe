"""Migration 0010 gives the accounts that exist before it their canonical keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import downgrade, upgrade

from api.app import create_app
from tests.helpers import create_database, drop_database, make_settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Rows as revision 0009 stored them: emails lower-cased, usernames [a-z0-9_]{3,32}.
LEGACY = [
    ("alice@example.com", "alice"),
    ("\uff41\uff4c\uff49\uff43\uff45@example.com", "alice_wide"),  # registered beside alice
    ("hans@b\u00fccher.de", "hans"),
    ("_carol@example.org", "_carol"),
]


@pytest.fixture
def migrated() -> Iterator[tuple[Flask, sa.Engine]]:
    """A database at 0009 holding LEGACY, upgraded to the head."""
    url = create_database("botyard_keys")
    app = create_app(make_settings(url))
    engine = sa.create_engine(url)
    try:
        with app.app_context():
            upgrade(revision="0009")
        with engine.begin() as conn:
            for n, (email, username) in enumerate(LEGACY):
                conn.execute(
                    sa.text(
                        "INSERT INTO users (id, email, username, password_hash, created_at) "
                        "VALUES (gen_random_uuid(), :email, :username, 'x', :at)"
                    ),
                    {"email": email, "username": username, "at": T0 + timedelta(minutes=n)},
                )
        with app.app_context():
            upgrade()
        yield app, engine
    finally:
        engine.dispose()
        drop_database(url)


def _keys(engine: sa.Engine) -> dict[str, tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, username, email_key, username_key FROM users"))
        return {r.username: (str(r.id), r.email_key, r.username_key) for r in rows}


def test_existing_rows_get_their_canonical_keys(migrated: tuple[Flask, sa.Engine]) -> None:
    keys = _keys(migrated[1])
    assert keys["alice"][1:] == ("alice@example.com", "alice")
    assert keys["hans"][1:] == ("hans@xn--bcher-kva.de", "hans")
    assert keys["_carol"][1:] == ("_carol@example.org", "_carol")


def test_a_newer_lookalike_does_not_take_the_older_accounts_key(
    migrated: tuple[Flask, sa.Engine],
) -> None:
    user_id, email_key, _ = _keys(migrated[1])["alice_wide"]
    assert email_key == f"duplicate:{user_id}"


def test_the_keys_are_unique_after_the_upgrade(migrated: tuple[Flask, sa.Engine]) -> None:
    with pytest.raises(sa.exc.IntegrityError), migrated[1].begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, username, username_key, password_hash) "
                "VALUES (gen_random_uuid(), 'ALICE@example.com', 'alice@example.com', "
                "'alice_3', 'alice_3', 'x')"
            )
        )


def test_downgrade_keeps_the_accounts(migrated: tuple[Flask, sa.Engine]) -> None:
    app, engine = migrated
    with app.app_context():
        downgrade(revision="0009")
    with engine.connect() as conn:
        usernames = set(conn.scalars(sa.text("SELECT username FROM users")))
    assert usernames == {username for _, username in LEGACY}
