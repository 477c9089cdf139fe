"""Fixtures of the community API tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import text

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models import db as database
from models.identity.rbac import sync_roles
from models.market.instruments import forget_instrument_refs, sync_instruments
from tests.api.community.people import Person
from tests.helpers import bearer


@pytest.fixture
def person(
    instruments: None, make_user: Callable[..., Any], login: Callable[..., Any]
) -> Callable[..., Person]:
    """Make a user (optionally named, with roles) logged in, with ``.headers`` for the API."""

    def make(name: str | None = None, roles: tuple[str, ...] = ("user",)) -> Person:
        user = make_user(name, roles=roles) if name is not None else make_user(roles=roles)
        return Person(user, bearer(login(user.username)["access_token"]))

    return make


@pytest.fixture
def committed(app: Flask, redis: Redis) -> Iterator[list[uuid.UUID]]:
    """The session bound to the real database, for tests whose threads need connections of
    their own (and so must see committed rows); roles and the synthetic instruments are
    synced. The users whose ids the test appends are deleted afterwards, with their
    activities and, by cascade, their bots, stars and links."""
    settings = app.extensions["botyard.settings"]
    engine = database.configure(settings.database_url)
    database.session.remove()
    forget_instrument_refs()
    with engine.connect() as conn:
        had_instruments = bool(conn.execute(text("SELECT count(*) FROM instruments")).scalar())
        had_roles = bool(conn.execute(text("SELECT count(*) FROM roles")).scalar())
    users: list[uuid.UUID] = []
    try:
        with app.app_context():
            sync_roles()
            sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
            database.session.commit()
        yield users
    finally:
        database.session.remove()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM activities WHERE actor_id = ANY(:ids)"), {"ids": users})
            conn.execute(text("DELETE FROM users WHERE id = ANY(:ids)"), {"ids": users})
            if not had_instruments:
                conn.execute(text("DELETE FROM instruments"))
            if not had_roles:
                conn.execute(text("DELETE FROM roles"))
                conn.execute(text("DELETE FROM permissions"))
        forget_instrument_refs()
