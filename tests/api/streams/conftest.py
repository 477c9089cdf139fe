"""Fixtures of the `streams` process tests: a database of their own and a process starter."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.api.streams.helpers import MAKE_USER, ORIGIN, ROOT, Streams, free_port
from tests.helpers import REDIS_URL, create_database, drop_database
from tests.workers.processes import Procs


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A migrated database with BTC-USD and ETH-USD, and a user ``streamer``."""
    url = create_database("botyard_streams")
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL or "", "FLASK_APP": "wsgi:app"}
    flask = Path(sys.executable).parent / "flask"
    subprocess.run([flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([sys.executable, "-c", MAKE_USER], cwd=ROOT, env=env, check=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for base in ("BTC", "ETH"):
            conn.execute(
                sa.text(
                    "INSERT INTO instruments (symbol, provider, kind, base, quote, "
                    "price_precision, size_precision) "
                    "VALUES (:symbol, 'synthetic', 'crypto', :base, 'USD', 2, 6)"
                ),
                {"symbol": f"{base}-USD", "base": base},
            )
    engine.dispose()
    yield url
    drop_database(url)


@pytest.fixture
def start(database: str, tmp_path: Path) -> Iterator[Callable[..., Streams]]:
    """Start a streams process with some settings; every process is killed at the end."""
    started: list[Procs] = []

    def run(redis_url: str | None = None, **settings: str) -> Streams:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "REDIS_URL": redis_url or REDIS_URL or "",
            "BOTYARD_ENV": "test",
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "0",
            "STREAMS_PORT": str(port),
            "SSE_HEARTBEAT_S": "0.3",
            "CORS_ORIGINS": ORIGIN,
            "RATE_LIMIT_ANONYMOUS": "100000/minute",
            "SSE_MAX_STREAMS_PER_USER": "1000",
            **settings,
        }
        procs = Procs(env, tmp_path)
        started.append(procs)
        streams = Streams(procs, port)
        procs.wait_for(streams.up, 30, "the streams process to answer /health/live")
        return streams

    yield run
    for procs in started:
        procs.kill_all()
