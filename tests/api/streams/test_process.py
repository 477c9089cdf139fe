"""The `streams` process (``python -m api.streams``), for real: streams, resume, limits, outages.

Each test starts the process on a free port against a database of this module's own;
clients are plain sockets (http.client), so what is tested is what a browser or a
proxy would see.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from models.market.cache import stream_key
from tests.api.streams.helpers import (
    ORIGIN,
    STREAM,
    Streams,
    _login,
    free_port,
    open_stream,
    read_event,
)
from tests.workers.processes import wait_for


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
