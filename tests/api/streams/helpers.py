"""The `streams` process under test: constants, a handle on a started process, SSE reading."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from tests.helpers import PASSWORD
from tests.workers.processes import Procs

ROOT = Path(__file__).resolve().parents[3]
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
