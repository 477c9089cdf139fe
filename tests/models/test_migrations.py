"""Migrations build the schema from nothing, tear it down, and agree with the models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade

from api.app import create_app
from models.schema import metadata
from tests.helpers import create_database, drop_database, make_settings

EXPECTED_TABLES = {
    "alembic_version",
    "users",
    "roles",
    "permissions",
    "user_roles",
    "role_permissions",
    "auth_sessions",
    "instruments",
    "candles",
    "password_reset_tokens",
    "bots",
    "bot_runs",
    "bot_trades",
    "bot_equity",
    "execution_logs",
    "backtests",
    "backtest_trades",
    "backtest_equity",
    "account_settings",
    "notifications",
    "notification_deliveries",
    "webhooks",
    "webhook_attempts",
    "activities",
    "email_change_tokens",
    "data_exports",
    "run_daily_equity",
    "run_rollup_state",
    "run_performance",
    "run_reconciliations",
    "leaderboard_generations",
    "leaderboard_entries",
    "leaderboard_exclusions",
    "share_links",
    "bot_stars",
    "comments",
    "follows",
    "blocks",
    "reports",
    "bot_mirrors",
}


@pytest.fixture(scope="module")
def empty_db_app() -> Iterator[tuple[Flask, str]]:
    """An app over a brand-new empty database (separate from the suite's)."""
    url = create_database("botyard_migr")
    migrate_app = create_app(make_settings(url))
    yield migrate_app, url
    sa.create_engine(url).dispose()
    drop_database(url)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_downgrade_to_base_then_upgrade_again(
    empty_db_app: tuple[Flask, str],
) -> None:
    migrate_app, url = empty_db_app
    assert _tables(url) == set()
    with migrate_app.app_context():
        upgrade()
        assert _tables(url) == EXPECTED_TABLES
        downgrade(revision="base")
        assert _tables(url) == {"alembic_version"}
        upgrade()
        assert _tables(url) == EXPECTED_TABLES


def test_models_and_migrations_agree(empty_db_app: tuple[Flask, str]) -> None:
    migrate_app, url = empty_db_app
    with migrate_app.app_context():
        upgrade()
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == [], f"autogenerate would change the schema: {diff}"
