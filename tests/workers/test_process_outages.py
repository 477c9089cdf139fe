"""Redis and Postgres outages under the Procfile's long-running processes (docs/operations.md).

The tests run a Redis server of their own (stopping the suite's would break other tests)
and a database of their own, start gunicorn (``web``), the worker, the scheduler, the
dispatcher and the feed on a fast clock (a candle a second), and three bots on BTC-USD 1m.
Once the bots tick, one test kills Redis and, when every loop has logged the outage (and
the API answers 503), starts it again empty; the other makes the database refuse
connections. Afterwards no process has exited or restarted, what Redis lost (the
dispatcher's group, the periodic jobs, the worker's registration, the leader key) is back,
and the bots' equity has one point per candle across the outage, none missing and none
doubled.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy.pool import NullPool

from api.app import create_app
from models import db as database
from models.bots.bots import create_bot
from models.bots.runs import current_run, start_bot
from models.identity.rbac import sync_roles
from models.identity.users import create_user
from models.market.cache import stream_key
from models.market.instruments import forget_instrument_refs
from tests.helpers import ADMIN_URL, PASSWORD, create_database, drop_database, make_settings
from tests.workers.processes import Procs
from workers.dispatch import GROUP
from workers.feed import CANDLE_CLOSED_STREAM
from workers.schedule import LEADER_KEY, PERIODIC

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MINUTE = 60_000
# Every process that loops on Redis, as it names itself in service_unavailable/_restored.
LOOPS = {"worker", "worker-scheduler", "scheduler", "dispatcher", "feed"}
BOT = {
    "symbol": "BTC-USD",
    "timeframe": "1m",
    "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 0.0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of this test's own, without persistence: a restart starts it empty."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = Redis(port=port, socket_connect_timeout=1, socket_timeout=5)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as out:
            self.proc = subprocess.Popen([REDIS_SERVER, *args], stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while True:
            with suppress(RedisError):
                if self.client.ping():
                    return
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.client.connection_pool.disconnect()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def outage_db(own_redis: RedisServer) -> Iterator[tuple[str, uuid.UUID, Any]]:
    """A migrated database of its own with one user; the app bound to it and to our Redis."""
    try:
        previous: str | None = database.get_engine().url.render_as_string(hide_password=False)
    except RuntimeError:
        previous = None
    url = create_database("botyard_outage")
    try:
        app = create_app(make_settings(url, redis_url=own_redis.url))
        database.session.remove()  # a session left by an earlier test is bound elsewhere
        forget_instrument_refs()
        with app.app_context():
            upgrade()
            sync_roles()
            owner = create_user("owner@example.com", "owner", PASSWORD)
            database.session.commit()
            owner_id = owner.id
            database.session.remove()
        yield url, owner_id, app
    finally:
        database.session.remove()
        forget_instrument_refs()
        if previous is not None:
            database.configure(previous)
        else:
            database.get_engine().dispose()
        drop_database(url)


def events(procs: Procs, name: str) -> list[dict[str, Any]]:
    """The JSON log lines the named process wrote so far."""
    found = []
    for line in procs.output(name).splitlines():
        with suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                found.append(entry)
    return found


def loops_that_logged(procs: Procs, event: str) -> set[str]:
    return {
        e.get("process", "")
        for name, _proc in procs.started
        for e in events(procs, name)
        if e.get("event") == event and e.get("service") == "redis"
    }


@dataclass
class Stack:
    """The Procfile's long-running processes on our Redis and database, with bots ticking."""

    procs: Procs
    redis: RedisServer
    engine: sa.Engine
    database: str
    api: str
    runs: list[str]
    started: dict[str, subprocess.Popen[bytes]]

    def exited(self) -> list[str]:
        """The processes that are no longer running (same Popen: a restart would show as one)."""
        return [name for name, proc in self.started.items() if proc.poll() is not None]

    def readiness(self) -> httpx.Response:
        with httpx.Client(timeout=10) as client:
            return client.get(f"{self.api}/health/ready")


def _env(database: str, redis_url: str, port: int) -> dict[str, str]:
    """The environment of the Procfile's processes on our database and Redis."""
    return {
        **os.environ,
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "BOTYARD_ENV": "test",
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "1",
        "FEED_SPEED": "60",  # a 1m candle every second
        "SEED_HISTORY_DAYS": "1",
        "BOT_SWEEP_GRACE_S": "1",
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "20",
    }


@pytest.fixture
def stack(
    own_redis: RedisServer, outage_db: tuple[str, uuid.UUID, Any], tmp_path: Path
) -> Iterator[Stack]:
    url, owner_id, app = outage_db
    port = free_port()
    env = _env(url, own_redis.url, port)
    procs = Procs(env, tmp_path)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        feed = procs.spawn("feed", "workers.feed")
        procs.wait_for(lambda: "feed_starting" in procs.output("feed"), 120, "the feed to start")
        runs = _start_bots(app, owner_id, 3)
        web = ("--config", "scripts/gunicorn_conf.py", "wsgi:app")
        started = {
            "web": procs.spawn("web", "gunicorn", *web),
            "worker": procs.spawn("worker", "workers.main"),
            "scheduler": procs.spawn("scheduler", "workers.schedule"),
            "dispatcher": procs.spawn("dispatcher", "workers.dispatch"),
            "feed": feed,
        }
        running = Stack(procs, own_redis, engine, url, f"http://127.0.0.1:{port}", runs, started)
        procs.wait_for(lambda: _ticked(engine, runs, 3), 120, "the bots to tick")
        procs.wait_for(lambda: _ready(running.api) == 200, 60, "the API to be ready")
        yield running
    finally:
        procs.kill_all()
        engine.dispose()


def test_processes_ride_out_a_redis_outage_and_a_restart_with_no_data(stack: Stack) -> None:
    procs, r = stack.procs, stack.redis.client
    stack.redis.kill()  # Redis is gone, with everything it held
    procs.wait_for(
        lambda: loops_that_logged(procs, "service_unavailable") >= LOOPS or stack.exited(),
        60,
        "every process to notice the outage",
    )
    assert not stack.exited(), procs.logs()
    answer = stack.readiness()
    assert answer.status_code == 503
    body = answer.json()
    assert body["code"] == 503 and body["checks"]["redis"]["ok"] is False, body
    newest_during = _newest_candle(stack.engine)

    stack.redis.start()  # empty: no RDB, no AOF
    procs.wait_for(
        lambda: loops_that_logged(procs, "service_restored") >= LOOPS or stack.exited(),
        60,
        "every process to resume",
    )
    assert not stack.exited(), procs.logs()
    procs.wait_for(lambda: _group_exists(r), 60, "the dispatcher's group")
    ids = [spec.job_id for spec in PERIODIC]
    procs.wait_for(
        lambda: None not in r.zmscore("rq:scheduler:scheduled_jobs", ids),
        60,
        "the periodic jobs to be scheduled again",
    )
    worker_pid = stack.started["worker"].pid
    procs.wait_for(
        lambda: any(w.pid == worker_pid for w in Worker.all(connection=r)),
        60,
        "the worker to be registered again",
    )
    leader = procs.wait_for(lambda: r.get(LEADER_KEY), 60, "a leader")
    assert leader.decode().endswith(f"-{stack.started['scheduler'].pid}")
    assert r.xlen(stream_key("BTC-USD")) > 0  # the feed's streams carry on
    _assert_resumed(stack, newest_during)


def test_processes_ride_out_a_postgres_outage(stack: Stack) -> None:
    procs, r = stack.procs, stack.redis.client
    name = sa.make_url(stack.database).database
    admin = sa.create_engine(ADMIN_URL or "", poolclass=NullPool, isolation_level="AUTOCOMMIT")
    refuse = sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
    drop = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    try:
        newest_before = _newest_candle(stack.engine)
        with admin.connect() as conn:  # the database refuses connections and drops its own
            conn.execute(refuse)
            conn.execute(drop, {"name": name})
        # A candle-closed event while Postgres is away: the dispatcher meets the outage too.
        event = {"ts": newest_before, "symbols": ["BTC-USD"], "timeframes": ["1m"]}
        r.xadd(CANDLE_CLOSED_STREAM, {"data": json.dumps(event)})
        hit = {"feed", "dispatcher"}
        procs.wait_for(
            lambda: _postgres_loops(procs, "service_unavailable") >= hit or stack.exited(),
            60,
            "the feed and the dispatcher to notice the outage",
        )
        assert not stack.exited(), procs.logs()
        answer = stack.readiness()
        assert answer.status_code == 503
        assert answer.json()["checks"]["postgres"]["ok"] is False
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
    procs.wait_for(
        lambda: _postgres_loops(procs, "service_restored") >= hit or stack.exited(),
        60,
        "the feed and the dispatcher to resume",
    )
    assert not stack.exited(), procs.logs()
    _assert_resumed(stack, _newest_candle(stack.engine))


def test_processes_started_while_redis_is_away_wait_for_it(
    own_redis: RedisServer, outage_db: tuple[str, uuid.UUID, Any], tmp_path: Path
) -> None:
    url, _owner_id, _app = outage_db
    own_redis.kill()
    port = free_port()
    procs = Procs(_env(url, own_redis.url, port), tmp_path)
    try:
        web = ("--config", "scripts/gunicorn_conf.py", "wsgi:app")
        started = {
            "web": procs.spawn("web", "gunicorn", *web),
            "worker": procs.spawn("worker", "workers.main"),
            "scheduler": procs.spawn("scheduler", "workers.schedule"),
            "dispatcher": procs.spawn("dispatcher", "workers.dispatch"),
            "feed": procs.spawn("feed", "workers.feed"),
        }
        loops = {"worker", "scheduler", "dispatcher", "feed"}  # the feed needs Redis to publish

        def gone() -> list[str]:
            return [name for name, proc in started.items() if proc.poll() is not None]

        procs.wait_for(
            lambda: loops_that_logged(procs, "service_unavailable") >= loops or gone(),
            120,
            "every process to wait for Redis",
        )
        assert not gone(), procs.logs()
        procs.wait_for(lambda: _ready(f"http://127.0.0.1:{port}") == 503, 60, "a 503")
        own_redis.start()
        procs.wait_for(
            lambda: loops_that_logged(procs, "service_restored") >= loops or gone(),
            60,
            "every process to start working",
        )
        procs.wait_for(lambda: _group_exists(own_redis.client), 60, "the dispatcher's group")
        procs.wait_for(lambda: _ready(f"http://127.0.0.1:{port}") == 200, 60, "the API")
        assert not gone(), procs.logs()
    finally:
        procs.kill_all()


def _assert_resumed(stack: Stack, newest_during: int) -> None:
    """Ticks go on past the candles closed before and during the outage, with no gap."""
    target = newest_during + 5 * MINUTE
    stack.procs.wait_for(
        lambda: _ticked_to(stack.engine, stack.runs, target), 120, "the bots to tick again"
    )
    stack.procs.wait_for(lambda: _ready(stack.api) == 200, 60, "the API to be ready again")
    assert not stack.exited(), stack.procs.logs()
    _assert_one_point_per_candle(stack.engine, stack.runs)


def _postgres_loops(procs: Procs, event: str) -> set[str]:
    return {
        e.get("process", "")
        for name, _proc in procs.started
        for e in events(procs, name)
        if e.get("event") == event and e.get("service") == "postgres"
    }


def _start_bots(app: Any, owner_id: uuid.UUID, count: int) -> list[str]:
    with app.app_context():
        run_ids = []
        for _ in range(count):
            bot = create_bot(owner_id, {**BOT, "name": f"bot-{uuid.uuid4().hex[:8]}"})
            start_bot(owner_id, bot.id, limit=100, now=datetime.now(UTC))
            run = current_run(bot)
            assert run is not None
            run_ids.append(str(run.id))
        database.session.commit()
        database.session.remove()
    return run_ids


def _ready(api: str) -> int:
    with suppress(httpx.HTTPError), httpx.Client(timeout=5) as client:
        return client.get(f"{api}/health/ready").status_code
    return 0


def _group_exists(r: Redis) -> bool:
    with suppress(RedisError):
        return any(g["name"] == GROUP.encode() for g in r.xinfo_groups(CANDLE_CLOSED_STREAM))
    return False


def _newest_candle(engine: sa.Engine) -> int:
    query = sa.text(
        "SELECT CAST(extract(epoch FROM max(c.ts)) * 1000 AS bigint) FROM candles c"
        " JOIN instruments i ON i.id = c.instrument_id"
        " WHERE i.symbol = 'BTC-USD' AND c.timeframe = '1m'"
    )
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def _ticks(engine: sa.Engine, runs: list[str]) -> list[tuple[int | None, int]]:
    query = sa.text(
        "SELECT r.last_candle_ts, (SELECT count(*) FROM bot_equity e WHERE e.run_id = r.id)"
        " FROM bot_runs r WHERE r.id = ANY(CAST(:ids AS uuid[]))"
    )
    with engine.connect() as conn:
        return [(row[0], int(row[1])) for row in conn.execute(query, {"ids": runs})]


def _ticked(engine: sa.Engine, runs: list[str], points: int) -> bool:
    rows = _ticks(engine, runs)
    return len(rows) == len(runs) and all(count >= points for _ts, count in rows)


def _ticked_to(engine: sa.Engine, runs: list[str], target: int) -> bool:
    rows = _ticks(engine, runs)
    return len(rows) == len(runs) and all((ts or 0) >= target for ts, _count in rows)


def _assert_one_point_per_candle(engine: sa.Engine, runs: list[str]) -> None:
    """Each run's equity timestamps are exactly the BTC-USD 1m candles it has processed."""
    points = sa.text("SELECT ts FROM bot_equity WHERE run_id = CAST(:id AS uuid) ORDER BY ts")
    candles = sa.text(
        "SELECT CAST(extract(epoch FROM c.ts) * 1000 AS bigint) FROM candles c"
        " JOIN instruments i ON i.id = c.instrument_id"
        " WHERE i.symbol = 'BTC-USD' AND c.timeframe = '1m'"
        " AND c.ts BETWEEN to_timestamp(:lo / 1000.0) AND to_timestamp(:hi / 1000.0) ORDER BY 1"
    )
    last = sa.text("SELECT last_candle_ts FROM bot_runs WHERE id = CAST(:id AS uuid)")
    with engine.connect() as conn:
        for run_id in runs:
            ts = [int(t) for t in conn.scalars(points, {"id": run_id})]
            newest = int(conn.scalar(last, {"id": run_id}))
            assert len(ts) == len(set(ts)), f"doubled equity points in {run_id}"
            assert ts[-1] == newest
            expected = [int(t) for t in conn.scalars(candles, {"lo": ts[0], "hi": newest})]
            missing = sorted(set(expected) - set(ts))
            assert ts == expected, f"{run_id}: {len(missing)} candles without equity: {missing}"
