"""The SSE stream: delivery, resume with Last-Event-ID, limits, and gunicorn staying responsive."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from api.market.stream import parse_last_event_id
from models.market.cache import stream_key
from tests.helpers import REDIS_URL, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
STREAM = "/api/v1/market/stream"


class Events:
    """Reads an SSE response from the test client event by event."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks = iter(response.response)

    def next(self) -> dict[str, str]:
        """The next event or comment block as a dict of its fields."""
        chunk = next(self.chunks)
        raw = chunk.decode() if isinstance(chunk, bytes) else chunk
        fields: dict[str, str] = {}
        for line in raw.strip("\n").split("\n"):
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.strip()
        return fields

    def close(self) -> None:
        self.response.close()


def open_events(client: FlaskClient, query: str, **headers: str) -> Events:
    response = client.get(f"{STREAM}?{query}", headers=headers, buffered=False)
    assert response.status_code == 200, response.get_data()
    assert response.mimetype == "text/event-stream"
    events = Events(response)
    assert events.next() == {"retry": "2000"}
    return events


def test_stream_delivers_entries_and_resumes_after_last_event_id(
    client: FlaskClient, instruments: None, redis: Redis
) -> None:
    events = open_events(client, "symbols=BTC-USD,eth-usd")
    try:
        redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":1}'}, id="1000-1")
        redis.xadd(stream_key("ETH-USD"), {"type": "candle", "data": '{"row":[]}'}, id="2000-0")
        got = [events.next(), events.next()]
    finally:
        events.close()
    by_event = {e["event"]: e for e in got}
    assert by_event["quote"]["data"] == '{"price":1}'
    assert by_event["candle"]["data"] == '{"row":[]}'
    last_id = got[-1]["id"]
    assert "BTC-USD=1000-1" in last_id and "ETH-USD=2000-0" in last_id

    # While the client is away, two more entries arrive; it resumes exactly after what it saw.
    redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":2}'}, id="3000-1")
    redis.xadd(stream_key("ETH-USD"), {"type": "quote", "data": '{"price":3}'}, id="4000-1")
    resumed = open_events(client, "symbols=BTC-USD,ETH-USD", **{"Last-Event-ID": last_id})
    try:
        replay = [resumed.next(), resumed.next()]
    finally:
        resumed.close()
    assert sorted(e["data"] for e in replay) == ['{"price":2}', '{"price":3}']
    assert "BTC-USD=3000-1" in replay[-1]["id"] or "BTC-USD=3000-1" in replay[0]["id"]


@pytest.mark.parametrize("earlier", [None, "500-0"], ids=["empty-stream", "old-entries"])
def test_a_quiet_symbol_has_a_position_from_the_first_event_and_resumes_from_it(
    client: FlaskClient, instruments: None, redis: Redis, earlier: str | None
) -> None:
    if earlier is not None:  # ETH-USD had entries before the client came, none since
        redis.xadd(stream_key("ETH-USD"), {"type": "quote", "data": '{"price":0}'}, id=earlier)
    events = open_events(client, "symbols=BTC-USD,ETH-USD")
    try:
        redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": '{"price":1}'}, id="1000-1")
        first = events.next()
    finally:
        events.close()
    assert first["id"] == f"BTC-USD=1000-1,ETH-USD={earlier or '0-0'}"

    # While the client is away ETH-USD gets its first entry since the client's last id.
    redis.xadd(stream_key("ETH-USD"), {"type": "quote", "data": '{"price":2}'}, id="2000-1")
    resumed = open_events(client, "symbols=BTC-USD,ETH-USD", **{"Last-Event-ID": first["id"]})
    try:
        replayed = resumed.next()  # BTC-USD's replay (nothing after 1000-1) comes first
    finally:
        resumed.close()
    assert replayed["data"] == '{"price":2}'
    assert replayed["id"] == "BTC-USD=1000-1,ETH-USD=2000-1"


def test_stream_limits_symbols_and_open_streams(
    app: Flask, client: FlaskClient, instruments: None
) -> None:
    too_many = ",".join(f"S{i}-USD" for i in range(11))
    response = client.get(f"{STREAM}?symbols={too_many}")
    assert response.status_code == 422
    assert "between 1 and 10 symbols" in response.json["message"]
    assert client.get(f"{STREAM}?symbols=NOPE-USD").status_code == 404
    assert client.get(f"{STREAM}?symbols=,,").status_code == 422

    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(sse_max_streams_per_user=1)
    try:
        first = open_events(client, "symbols=BTC-USD")
        second = client.get(f"{STREAM}?symbols=ETH-USD")
        assert second.status_code == 429
        assert second.json["code"] == 429 and "open streams" in second.json["message"]
        first.close()
        open_events(client, "symbols=ETH-USD").close()  # the slot was released
    finally:
        app.extensions["botyard.settings"] = original


# --- a real gunicorn: open streams hold threads, ordinary requests still answer ---------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def gunicorn_server() -> Iterator[int]:
    url = create_database()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL or "",
        "BOTYARD_ENV": "test",
        "FLASK_APP": "wsgi:app",
    }
    bin_dir = Path(sys.executable).parent
    subprocess.run([bin_dir / "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO instruments (symbol, provider, kind, base, quote, price_precision, "
                "size_precision) VALUES ('BTC-USD', 'synthetic', 'crypto', 'BTC', 'USD', 2, 6)"
            )
        )
    engine.dispose()
    port = _free_port()
    env.update(
        WEB_PORT=str(port),
        WEB_CONCURRENCY="1",
        WEB_THREADS="4",
        WEB_MAX_STREAMS="3",
        LOG_LEVEL="WARNING",
    )
    proc = subprocess.Popen(
        [bin_dir / "gunicorn", "--config", "scripts/gunicorn_conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        drop_database(url)


def test_gunicorn_keeps_serving_requests_while_streams_are_open(gunicorn_server: int) -> None:
    port = gunicorn_server
    streams = []
    try:
        for _ in range(3):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", f"{STREAM}?symbols=BTC-USD")
            response = conn.getresponse()
            assert response.status == 200
            assert response.readline() == b"retry: 2000\n"
            streams.append(conn)
        # Three of four threads hold streams; the process refuses a fourth stream ...
        extra = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        extra.request("GET", f"{STREAM}?symbols=BTC-USD")
        refused = extra.getresponse()
        assert refused.status == 503
        extra.close()
        # ... and ordinary requests are still answered (a starved server would time out).
        for path in ("/health/live", "/api/v1/market/instruments"):
            plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            plain.request("GET", path)
            assert plain.getresponse().status == 200
            plain.close()
    finally:
        for conn in streams:
            conn.close()


def test_last_event_id_keeps_only_well_formed_positions_of_requested_symbols() -> None:
    header = "BTC-USD=1700000000000-3,ETH-USD=²-1,SOL-USD=5-0,XRP-USD=garbage"
    assert parse_last_event_id(header, ("BTC-USD", "ETH-USD", "XRP-USD")) == {
        "BTC-USD": "1700000000000-3"
    }
    assert parse_last_event_id(None, ("BTC-USD",)) == {}
