"""Postgres or Redis unreachable: 503 in the error shape, quickly; Redis loss degrades gracefully.

Each scenario runs in its own interpreter so the broken URLs never leak into the
rest of the suite's process-wide engine and rate limiter.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REDIS_URL, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]

SCENARIO = r"""
import json, sys, time
from flask_migrate import upgrade
from api.app import create_app
from models.identity.rbac import sync_roles
from models.db import session
from models.identity.users import create_user
from tests.helpers import make_settings

db_url, redis_url, prepare_db = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
app = create_app(make_settings(db_url, redis_url=redis_url))
client = app.test_client()
out = {}
with app.app_context():
    if prepare_db:
        upgrade()
        sync_roles()
        create_user("ops@example.com", "ops", "long-enough-password")
        from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
        from models.market.instruments import sync_instruments
        from models.market.data import load_history
        btc = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
        (inst,), _ = sync_instruments([btc], provider="synthetic")
        load_history(SyntheticProvider(), inst, btc, 1767225600000 - 7200000, 1767225600000)
        session.commit()

def call(name, method, path, **kw):
    t = time.perf_counter()
    r = client.open(path, method=method, **kw)
    out[name] = {"status": r.status_code, "body": r.get_json(), "s": time.perf_counter() - t}
    return r

login = call("login", "POST", "/api/v1/auth/login",
             json={"login": "ops", "password": "long-enough-password"})
token = (login.get_json() or {}).get("access_token")
if token:
    call("me", "GET", "/api/v1/me", headers={"Authorization": "Bearer " + token})
call("register", "POST", "/api/v1/auth/register",
     json={"email": "n@example.com", "username": "newbie", "password": "long-enough-password"})
call("candles", "GET", "/api/v1/market/instruments/BTC-USD/candles"
     "?timeframe=1h&start=1767218400000&end=1767225600000")
call("quote", "GET", "/api/v1/market/instruments/BTC-USD/quote")
call("stream", "GET", "/api/v1/market/stream?symbols=BTC-USD")
call("live", "GET", "/health/live")
call("ready", "GET", "/health/ready")
print(json.dumps(out))
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture
def scratch_db() -> Iterator[str]:
    url = create_database("botyard_outage")
    yield url
    drop_database(url)


def run(db_url: str, redis_url: str, prepare_db: bool) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", SCENARIO, db_url, redis_url, "1" if prepare_db else "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    out = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["stderr"] = proc.stderr
    return out


def assert_503(result: dict[str, Any], limit_s: float) -> None:
    """A 503 in the error shape, given before ``limit_s``.

    The limits are far above the timeouts (2 s to connect): they tell "gave up on time"
    from "hung" (which would last until ``run``'s 120 s), and hold on a loaded machine.
    """
    assert result["status"] == 503, result
    assert result["body"]["code"] == 503
    assert result["body"]["message"]
    assert result["s"] < limit_s, result


def test_postgres_refusing_connections() -> None:
    dead = f"postgresql+psycopg://botyard@127.0.0.1:{_closed_port()}/botyard"
    out = run(dead, REDIS_URL or "", prepare_db=False)
    assert_503(out["login"], 15.0)
    assert_503(out["register"], 15.0)
    assert out["live"]["status"] == 200
    assert out["ready"]["status"] == 503
    checks = out["ready"]["body"]["checks"]
    assert checks["postgres"]["ok"] is False and checks["redis"]["ok"] is True
    assert "127.0.0.1" not in json.dumps(out["ready"]["body"])  # no internals on a public probe


def test_postgres_accepting_but_silent(silent_server: int) -> None:
    hung = f"postgresql+psycopg://botyard@127.0.0.1:{silent_server}/botyard"
    out = run(hung, REDIS_URL or "", prepare_db=False)
    # libpq's connect_timeout is 2 s at minimum; without it the login would wait forever.
    assert_503(out["login"], 20.0)


def test_redis_down_degrades_without_errors(scratch_db: str) -> None:
    dead_redis = f"redis://127.0.0.1:{_closed_port()}/0"
    out = run(scratch_db, dead_redis, prepare_db=True)
    # Rate limits fall back to memory; token checks fall back to Postgres.
    assert out["login"]["status"] == 200, out["login"]
    assert out["me"]["status"] == 200, out["me"]
    assert out["register"]["status"] == 201, out["register"]
    assert "falling back to in-memory storage" in out["stderr"]
    # Market data comes from Postgres; only the live stream needs Redis.
    assert out["candles"]["status"] == 200, out["candles"]
    assert [row[0] for row in out["candles"]["body"]["rows"]] == [1767218400000, 1767222000000]
    assert out["quote"]["status"] == 200 and out["quote"]["body"]["ts"] == 1767225600000
    assert out["stream"]["status"] == 503 and out["stream"]["body"]["code"] == 503
    assert out["ready"]["status"] == 503
    assert out["ready"]["body"]["checks"]["redis"]["ok"] is False
    assert out["ready"]["body"]["checks"]["postgres"]["ok"] is True
