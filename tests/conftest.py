"""Shared fixtures: a database this run creates, real Redis, the app, clients, users.

``scripts/test.sh`` starts the project-local Postgres and Redis and exports
``BOTYARD_TEST_PG_ADMIN_URL`` (a server we may create databases on) and
``BOTYARD_TEST_REDIS_URL`` (a Redis database we may flush). The suite creates
its own database, migrates it with Alembic, and drops it at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from redis import Redis

from api.app import create_app
from models import db as database
from models.identity.rbac import sync_roles
from models.identity.users import create_user
from models.leaderboards.preview_cache import set_preview_redis
from models.market.instruments import forget_instrument_refs
from models.market.responses import forget_process_responses
from tests.helpers import (
    ADMIN_URL,
    PASSWORD,
    REDIS_URL,
    bearer,
    create_database,
    drop_database,
    make_settings,
)


def pytest_configure(config: pytest.Config) -> None:
    if not ADMIN_URL or not REDIS_URL:
        raise pytest.UsageError(
            "Run the suite with ./scripts/test.sh: it starts Postgres and Redis and sets "
            "BOTYARD_TEST_PG_ADMIN_URL and BOTYARD_TEST_REDIS_URL."
        )


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = create_database()
    yield url
    database.get_engine().dispose()
    drop_database(url)


@pytest.fixture(scope="session")
def app(database_url: str) -> Flask:
    application = create_app(make_settings(database_url))
    with application.app_context():
        upgrade()
    return application


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL or "")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def db(app: Flask, redis: Redis) -> Iterator[Any]:
    """One outer transaction per test, rolled back: commits inside become savepoints."""
    settings = app.extensions["botyard.settings"]
    engine = database.configure(settings.database_url)
    connection = engine.connect()
    outer = connection.begin()
    database.session.remove()
    database.SessionFactory.configure(bind=connection, join_transaction_mode="create_savepoint")
    forget_instrument_refs()  # ids from a rolled-back test must not leak into this one
    forget_process_responses()  # nor candle responses built from its data
    set_preview_redis(app.extensions["botyard.redis"])  # another test's app may have moved it
    with app.app_context():
        sync_roles()
        database.session.commit()
        yield database.session
    database.session.remove()
    outer.rollback()
    connection.close()
    database.SessionFactory.configure(bind=engine, join_transaction_mode="conditional_savepoint")


@pytest.fixture
def client(app: Flask, db: Any) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    """Create a user (committed to the test transaction); returns the User."""
    counter = iter(range(1, 10_000))

    def make(
        username: str | None = None, roles: tuple[str, ...] = ("user",), password: str = PASSWORD
    ) -> Any:
        name = username or f"user{next(counter)}_{uuid.uuid4().hex[:6]}"
        user = create_user(f"{name}@example.com", name, password, roles)
        db.commit()
        return user

    return make


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Log in and return the token response body (asserts success)."""

    def do(username: str, password: str = PASSWORD, **kwargs: Any) -> dict[str, Any]:
        response = client.post(
            "/api/v1/auth/login", json={"login": username, "password": password}, **kwargs
        )
        assert response.status_code == 200, response.json
        return dict(response.json or {})

    return do


@pytest.fixture
def auth_headers(make_user: Callable[..., Any], login: Callable[..., Any]) -> dict[str, str]:
    user = make_user()
    return bearer(login(user.username)["access_token"])


@pytest.fixture
def admin_headers(make_user: Callable[..., Any], login: Callable[..., Any]) -> dict[str, str]:
    admin = make_user(roles=("admin", "user"))
    return bearer(login(admin.username)["access_token"])
