"""Against a real gunicorn (scripts/gunicorn_conf.py): its own errors come in the one JSON shape."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.api.gunicorn_process import running_gunicorn


def _exchange(port: int, raw: bytes) -> bytes:
    """Send ``raw`` and read until the server closes (or a generous deadline)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and raw.startswith(b"GET /health"):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
        return b"".join(chunks)


def _parse(response: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, json.loads(body)


@pytest.fixture(scope="module")
def server(app: Flask) -> Iterator[int]:
    with running_gunicorn(app.extensions["botyard.settings"].database_url) as port:
        yield port


def _assert_shape(response: bytes, status: int) -> dict[str, Any]:
    code, headers, body = _parse(response)
    assert code == status, response[:300]
    assert headers["content-type"] == "application/json"
    assert body["code"] == status and body["status"] and body["message"]
    assert body["request_id"] == headers["x-request-id"]
    assert "<html" not in response.decode("latin-1")
    return dict(body)


def test_long_uri_is_414_json(server: int) -> None:
    body = _assert_shape(
        _exchange(server, b"GET /api/v1/bots?q=" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        414,
    )
    assert body["status"] == "Request-URI Too Long"


def test_too_many_headers_is_431_json(server: int) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    _assert_shape(
        _exchange(server, b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"), 431
    )


def test_huge_header_is_431_json(server: int) -> None:
    raw = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n"
    _assert_shape(_exchange(server, raw), 431)


def test_malformed_request_line_is_400_json(server: int) -> None:
    _assert_shape(_exchange(server, b"NOT A REQUEST\r\n\r\n"), 400)


def test_nul_in_a_header_is_400_json(server: int) -> None:
    raw = b"GET /health/live HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x00b\r\n\r\n"
    _assert_shape(_exchange(server, raw), 400)


def test_ordinary_requests_still_pass(server: int) -> None:
    response = _exchange(
        server, b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert response.startswith(b"HTTP/1.1 200")
