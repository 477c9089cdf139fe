"""Helpers shared by tests: databases of our own, settings, auth headers."""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
import sqlalchemy as sa

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.market.data import load_history
from models.market.instruments import sync_instruments
from settings import Settings, normalize_database_url

ADMIN_URL = os.environ.get("BOTYARD_TEST_PG_ADMIN_URL")
REDIS_URL = os.environ.get("BOTYARD_TEST_REDIS_URL")

PASSWORD = "correct-horse-battery"


def _admin_engine() -> sa.Engine:
    assert ADMIN_URL
    return sa.create_engine(normalize_database_url(ADMIN_URL), isolation_level="AUTOCOMMIT")


def create_database(prefix: str = "botyard_test") -> str:
    """Create an empty database of our own; returns its URL."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    url = sa.make_url(normalize_database_url(ADMIN_URL or "")).set(database=name)
    return url.render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop a database this run created."""
    name = sa.make_url(url).database
    assert name and name.startswith("botyard_"), name
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Test settings: generous rate limits unless a test asks otherwise."""
    base = Settings(
        env="test",
        database_url=database_url,
        redis_url=REDIS_URL or "",
        jwt_secret_key="test-secret-" + "x" * 40,
        rate_limit_login_ip="1000/minute",
        rate_limit_login_account="1000/minute",
        rate_limit_login_account_ip="1000/minute",
        rate_limit_register_ip="1000/minute",
        rate_limit_anonymous="10000/minute",
        rate_limit_user="10000/minute",
        rate_limit_moderator="10000/minute",
        log_level="INFO",
    )
    return base.replace(**overrides) if overrides else base


def bearer(token: str) -> dict[str, str]:
    """An Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def assert_rows_close(actual: Any, expected: Any) -> None:
    """Candle rows ``[[ts, o, h, l, c, v], ...]`` equal up to float rounding (same count and ts)."""
    got, want = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert got.shape == want.shape, (got.shape, want.shape)
    if got.size:
        assert np.array_equal(got[:, 0], want[:, 0]), "timestamps differ"
        np.testing.assert_allclose(got, want, rtol=1e-9)


def load_btc_history(start_ms: int, end_ms: int) -> Any:
    """Sync the synthetic instruments and store BTC-USD history for the span; the instrument.

    Flushes, the caller commits.
    """
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    btc = next(i for i in instruments if i.symbol == "BTC-USD")
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
    load_history(SyntheticProvider(), btc, spec, start_ms, end_ms)
    return btc
