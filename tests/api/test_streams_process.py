"""The `streams` process (``python -m api.streams``), for real: streams, resume, limits, outages.

Each test starts the process on a free port against a database of this module's own;
clients are plain sockets (http.client), so what is tested is what a browser or a
proxy would see.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from redis import Redis

from models.market.cache import stream_key
from tests.helpers import PASSWORD, REDIS_URL, create_database, drop_database
from tests.workers.processes import Procs, wait_for

ROOT = Path(__file__).resolve().parents[2]
STREAM = "/api/v1/market/stream"
ORIGIN = "http://app.example.test"
MAKE_USER = f"""
from api.app import create_app
from models.db import session
from models.identity.rbac import sync_roles
from models.identity.users import create_user
with create_app().app_context():
    sync_roles()
    create_user("s@example.com", "streamer", {PASSWORD!r})
    session.commit()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class Streams:
    """A running streams process and the means to talk to it."""

    def __init__(self, procs: Procs, port: int) -> None:
        self.procs, self.port = procs, port
        self.proc = procs.spawn("streams", "api.streams")

    def get(
        self, path: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request; the connection stays open (a stream's body is read from it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        conn.request(method, path, headers=headers or {})
        return conn, conn.getresponse()

    def status_of(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Status and JSON body of a request whose answer is not a stream."""
        conn, response = self.get(path, headers)
        try:
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def up(self) -> bool:
        try:
            return self.status_of("/health/live")[0] == 200
        except OSError:
            return False


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


def read_event(response: http.client.HTTPResponse) -> dict[str, str]:
    """The next event or comment block of an SSE body, as its fields."""
    fields: dict[str, str] = {}
    while True:
        line = response.readline().decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if not line:
            if fields:
                return fields
            continue
        name, _, value = line.partition(":")
        fields[name or "comment"] = value.strip()


def open_stream(
    streams: Streams, symbols: str = "BTC-USD", **headers: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn, response = streams.get(f"{STREAM}?symbols={symbols}", headers)
    assert response.status == 200, response.read()
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    assert read_event(response) == {"retry": "2000"}
    return conn, response


def test_a_stream_carries_events_and_heartbeats_and_resumes_after_its_last_event_id(
    start: Callable[..., Streams], redis: Redis
) -> None:
    streams = start()
    conn, response = open_stream(streams, "BTC-USD,ETH-USD")
    try:
        redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":1}'}, id="1000-1")
        event = read_event(response)
        while "comment" in event:  # heartbeats may come first
            event = read_event(response)
        assert event == {
            "id": "BTC-USD=1000-1,ETH-USD=0-0",
            "event": "quote",
            "data": '{"price":1}',
        }
        # Nothing else is published: the next block is a heartbeat (SSE_HEARTBEAT_S=0.3) ...
        (key,) = redis.keys("sse:open:*")
        ((_, lease),) = redis.zrange(key, 0, -1, withscores=True)
        assert read_event(response) == {"comment": "heartbeat"}
        # ... which renews the caller's slot.
        wait_for(lambda: redis.zrange(key, 0, -1, withscores=True)[0][1] > lease, 15, "a renewal")
    finally:
        conn.close()
    wait_for(lambda: redis.zcard(key) == 0, 15, "the slot to be released")

    # While the client is away each symbol gets an entry; resuming replays exactly those.
    redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":2}'}, id="2000-1")
    redis.xadd(stream_key("ETH-USD"), {"type": "candle", "data": '{"row":[]}'}, id="3000-1")
    conn, response = open_stream(
        streams, "BTC-USD,ETH-USD", **{"Last-Event-ID": "BTC-USD=1000-1,ETH-USD=0-0"}
    )
    try:
        replay = [read_event(response), read_event(response)]
        redis.xadd(stream_key("ETH-USD"), {"type": "quote", "data": '{"price":4}'}, id="4000-1")
        live = read_event(response)
        while "comment" in live:
            live = read_event(response)
    finally:
        conn.close()
    assert [e["id"] for e in replay] == [
        "BTC-USD=2000-1,ETH-USD=0-0",
        "BTC-USD=2000-1,ETH-USD=3000-1",
    ]
    assert [e["event"] for e in replay] == ["quote", "candle"]
    assert live["id"] == "BTC-USD=2000-1,ETH-USD=4000-1"
    assert live["data"] == '{"price":4}'


def test_the_process_cap_is_exact_under_concurrent_connects(
    start: Callable[..., Streams], redis: Redis
) -> None:
    cap, clients = 8, 40
    streams = start(SSE_MAX_STREAMS_PER_PROCESS=str(cap), STREAMS_THREADS="8")
    barrier = threading.Barrier(clients)
    results: list[tuple[int, http.client.HTTPConnection, bytes]] = []
    lock = threading.Lock()

    def connect() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", streams.port, timeout=15)
        conn.connect()
        barrier.wait()  # every socket is open: the requests go out together
        conn.request("GET", f"{STREAM}?symbols=BTC-USD")
        response = conn.getresponse()
        body = response.readline() if response.status == 200 else response.read()
        with lock:
            results.append((response.status, conn, body))

    threads = [threading.Thread(target=connect) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200] * cap + [503] * (clients - cap)
        for status, _, body in results:
            if status == 503:
                error = json.loads(body)
                assert error["code"] == 503 and "limit of open streams" in error["message"]
                assert error["request_id"]
            else:
                assert body == b"retry: 2000\n"
        # A stream that ends gives its place back.
        next(conn for status, conn, _ in results if status == 200).close()
        again, _ = wait_for(
            lambda: _stream_or_none(streams), 15, "a place to free up after a stream closed"
        )
        assert streams.status_of(f"{STREAM}?symbols=BTC-USD")[0] == 503  # full again
        again.close()
    finally:
        for _, conn, _ in results:
            conn.close()


def _stream_or_none(
    streams: Streams,
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse] | None:
    conn, response = streams.get(f"{STREAM}?symbols=BTC-USD")
    if response.status == 200:
        return conn, response
    assert response.status == 503
    conn.close()
    return None


def test_auth_limits_and_cors_apply_as_on_web(start: Callable[..., Streams], redis: Redis) -> None:
    streams = start(SSE_MAX_STREAMS_PER_USER="2")
    # The per-caller limit: an anonymous caller is its address.
    anonymous = [open_stream(streams), open_stream(streams)]
    try:
        status, error = streams.status_of(f"{STREAM}?symbols=ETH-USD")
        assert status == 429
        assert error["code"] == 429 and "At most 2 open streams per caller" in error["message"]
        # A signed-in user is a caller of its own: the token comes through the same app.
        token = _login(streams)
        user = open_stream(streams, "ETH-USD", Authorization=f"Bearer {token}")
        user[0].close()
    finally:
        for conn, _ in anonymous:
            conn.close()
    # Validation and lookups answer in the one error shape.
    status, error = streams.status_of(f"{STREAM}?symbols=NOPE-USD")
    assert status == 404 and error["code"] == 404
    status, error = streams.status_of(f"{STREAM}?symbols=,,")
    assert status == 422 and "symbols" in error["errors"]["query"]
    # CORS: the allowed origin may read the stream, another may not; preflights are answered.
    conn, response = wait_for(
        lambda: _stream_or_429(streams, {"Origin": ORIGIN}), 15, "the slots to be released"
    )
    assert response.getheader("Access-Control-Allow-Origin") == ORIGIN
    conn.close()
    conn, response = streams.get(f"{STREAM}?symbols=BTC-USD", {"Origin": "http://evil.test"})
    assert response.getheader("Access-Control-Allow-Origin") is None
    conn.close()
    conn, response = streams.get(
        f"{STREAM}?symbols=BTC-USD",
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
        method="OPTIONS",
    )
    assert response.status == 200
    assert "last-event-id" in response.getheader("Access-Control-Allow-Headers", "").lower()
    conn.close()


def _stream_or_429(
    streams: Streams, headers: dict[str, str]
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse] | None:
    conn, response = streams.get(f"{STREAM}?symbols=BTC-USD", headers)
    if response.status == 200:
        return conn, response
    assert response.status == 429, response.read()
    conn.close()
    return None


def _login(streams: Streams) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", streams.port, timeout=15)
    body = json.dumps({"login": "streamer", "password": PASSWORD})
    conn.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    assert response.status == 200, payload
    token: str = payload["access_token"]
    return token


def test_the_anonymous_rate_limit_applies(start: Callable[..., Streams], redis: Redis) -> None:
    streams = start(RATE_LIMIT_ANONYMOUS="3/minute")
    statuses = [streams.status_of(f"{STREAM}?symbols=NOPE-USD")[0] for _ in range(4)]
    assert statuses == [404, 404, 404, 429]


class RedisServer:
    """A redis-server of this test's own, so stopping it touches nothing else."""

    def __init__(self, tmp_path: Path) -> None:
        self.port, self.dir = free_port(), tmp_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._ping, 15, "redis-server to start")

    def _ping(self) -> bool:
        try:
            return bool(Redis.from_url(self.url, socket_timeout=1).ping())
        except OSError:
            return False
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def test_it_rides_out_redis_going_away_and_coming_back(
    start: Callable[..., Streams], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        streams = start(redis_url=server.url)
        client = Redis.from_url(server.url)
        conn, response = open_stream(streams)
        client.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":1}'}, id="1000-1")
        event = read_event(response)
        while "comment" in event:
            event = read_event(response)
        assert event["id"] == "BTC-USD=1000-1"

        server.stop()  # gone, data and all (no persistence)
        streams.procs.wait_for(
            lambda: "streams_redis_unavailable" in streams.procs.output("streams"),
            30,
            "the streams process to log the outage",
        )
        # The open stream stays open: heartbeats go on.
        assert read_event(response) == {"comment": "heartbeat"}
        # A new stream meanwhile is refused in the error shape, quickly, not left hanging.
        status, error = streams.status_of(f"{STREAM}?symbols=BTC-USD")
        assert status == 503 and error["code"] == 503
        assert streams.proc.poll() is None

        server.start()  # back, empty
        streams.procs.wait_for(
            lambda: "streams_redis_back" in streams.procs.output("streams"),
            60,
            "the streams process to read again",
        )
        client = Redis.from_url(server.url)
        client.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":2}'}, id="2000-1")
        event = read_event(response)
        while "comment" in event:
            event = read_event(response)
        assert event == {"id": "BTC-USD=2000-1", "event": "quote", "data": '{"price":2}'}
        conn.close()
        conn, response = open_stream(streams)  # new streams are served again
        conn.close()
        assert streams.proc.poll() is None
    finally:
        server.stop()


def test_sigterm_ends_the_streams_frees_their_slots_and_exits(
    start: Callable[..., Streams], redis: Redis
) -> None:
    streams = start()
    conn, response = open_stream(streams)
    (key,) = redis.keys("sse:open:*")
    assert redis.zcard(key) == 1
    streams.proc.send_signal(signal.SIGTERM)
    assert streams.procs.exit_code(streams.proc, 30) == 0
    while response.readline():  # heartbeats until the server ends the stream
        pass
    conn.close()
    assert redis.zcard(key) == 0  # released before exiting: a reconnect elsewhere is not refused


def test_what_never_reaches_the_app_is_answered_in_the_error_shape(
    start: Callable[..., Streams],
) -> None:
    streams = start(MAX_BODY_BYTES="1024")

    def raw(request: bytes) -> tuple[int, dict[str, Any]]:
        with socket.create_connection(("127.0.0.1", streams.port), timeout=15) as sock:
            sock.sendall(request)
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)

    status, error = raw(b"NOT HTTP AT ALL\r\n\r\n")
    assert status == 400 and error["code"] == 400 and error["request_id"]
    body = b'{"login": "' + b"x" * 2000 + b'"}'
    status, error = raw(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert status == 413 and error["code"] == 413


# --- GET /api/v1/me/events on the streams process ---------------------------------------------

EVENTS = "/api/v1/me/events"
NOTIFY = """
import sys, uuid
from api.app import create_app
from models.db import session
from models.people.notifications import notify
with create_app().app_context():
    notify(uuid.UUID(sys.argv[1]), "backtest.finished", {"backtest_id": "b1"})
    session.commit()
"""


def _next_event(response: http.client.HTTPResponse) -> dict[str, str]:
    event = read_event(response)
    while "comment" in event:  # heartbeats (SSE_HEARTBEAT_S=0.3)
        event = read_event(response)
    return event


def _open_events(
    streams: Streams, token: str, **headers: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn, response = streams.get(EVENTS, {"Authorization": f"Bearer {token}", **headers})
    assert response.status == 200, response.read()
    assert read_event(response) == {"retry": "2000"}
    return conn, response


def test_my_events_arrive_resume_and_share_the_per_user_limit(
    start: Callable[..., Streams], redis: Redis, database: str
) -> None:
    from workers.outbox_relay import publish_events  # noqa: PLC0415 - the relay, as is

    streams = start(SSE_MAX_STREAMS_PER_USER="2")
    token = _login(streams)
    me = streams.status_of("/api/v1/me", {"Authorization": f"Bearer {token}"})[1]
    user_id = me["id"]
    assert streams.status_of(EVENTS)[0] == 401
    conn, response = _open_events(streams, token)
    try:
        # A notification committed by another process comes through its outbox relay.
        env = {**os.environ, "DATABASE_URL": database, "REDIS_URL": REDIS_URL or ""}
        subprocess.run([sys.executable, "-c", NOTIFY, user_id], cwd=ROOT, env=env, check=True)
        event = _next_event(response)
        assert event["event"] == "notification"
        assert json.loads(event["data"])["data"] == {"backtest_id": "b1"}
        first_id = event["id"]
        assert redis.xrange(f"events:user:{user_id}")[0][0].decode() == first_id
        assert read_event(response) == {"comment": "heartbeat"}
        # My market and events streams share my budget of two.
        market, _ = open_stream(streams, "BTC-USD", Authorization=f"Bearer {token}")
        status, error = streams.status_of(EVENTS, {"Authorization": f"Bearer {token}"})
        assert status == 429 and "At most 2 open streams" in error["message"]
        market.close()
    finally:
        conn.close()

    # While I am away two bot events arrive; resuming replays exactly those, then live ones.
    uid = uuid.UUID(user_id)
    publish_events(redis, [(uid, "bot.status", {"n": 2}), (uid, "bot.trade", {"n": 3})])
    conn, response = wait_for(
        lambda: _events_or_429(streams, token, first_id), 15, "my slots to be released"
    )
    try:
        replay = [read_event(response), read_event(response)]
        # Everyone's events share the readers' one stream; only mine reach me.
        stranger = uuid.uuid4()
        publish_events(
            redis, [(stranger, "bot.failure", {"n": 99}), (uid, "bot.failure", {"n": 4})]
        )
        live = _next_event(response)
    finally:
        conn.close()
    got = [*replay, live]
    assert [(e["event"], json.loads(e["data"])["n"]) for e in got] == [
        ("bot.status", 2),
        ("bot.trade", 3),
        ("bot.failure", 4),
    ]
    ids = [first_id, *(e["id"] for e in got)]
    assert [i.decode() for i, _ in redis.xrange(f"events:user:{user_id}")] == ids
    status, error = streams.status_of(
        EVENTS, {"Authorization": f"Bearer {token}", "Last-Event-ID": "nope"}
    )
    assert status == 422 and error["code"] == 422 and "Last-Event-ID" in error["message"]


def _events_or_429(
    streams: Streams, token: str, last_id: str
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse] | None:
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": last_id}
    conn, response = streams.get(EVENTS, headers)
    if response.status == 429:
        conn.close()
        return None
    assert response.status == 200, response.read()
    assert read_event(response) == {"retry": "2000"}
    return conn, response


def test_my_events_stream_ends_once_its_token_expires(
    start: Callable[..., Streams], redis: Redis
) -> None:
    streams = start(ACCESS_TOKEN_TTL="5")
    token = _login(streams)
    conn, response = _open_events(streams, token)
    deadline = time.monotonic() + 60
    try:
        while response.readline():  # heartbeats until the server ends the stream
            assert time.monotonic() < deadline, "the stream outlived its token"
    finally:
        conn.close()
    status, error = streams.status_of(EVENTS, {"Authorization": f"Bearer {token}"})
    assert status == 401 and error["code"] == 401
    wait_for(lambda: not redis.keys("sse:open:*"), 15, "the stream's slot to be released")
