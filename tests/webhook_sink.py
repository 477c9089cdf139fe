"""A real HTTP receiver on loopback for webhook tests, and an independent signature check.

``Sink`` answers each POST with a status the test chooses (and a Location for 3xx) and
keeps what it got. ``verify`` is written from docs/webhooks.md's recipe, not from the
code under test. ``FakeDns`` stands in for DNS (an external service) by name.
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask

from models.people import webhook_urls
from workers.main import build_worker
from workers.queues import NOTIFICATIONS


@dataclass
class Received:
    """One request the sink got."""

    path: str
    headers: dict[str, str]
    body: bytes


class Sink:
    """A threaded HTTP server on 127.0.0.1 that records requests."""

    def __init__(
        self, status: int = 200, location: str | None = None, tls: tuple[str, str] | None = None
    ) -> None:
        self.status = status
        self.scheme = "https" if tls else "http"
        self.location = location
        self.received: list[Received] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.received.append(Received(self.path, dict(self.headers.items()), body))
                self.send_response(sink.status)
                if sink.location:
                    self.send_header("Location", sink.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # (certificate file, key file)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """docs/webhooks.md's recipe: HMAC-SHA256 over ``timestamp + "." + body``, fresh timestamp."""
    timestamp = headers["X-Botyard-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("v1=" + mac.hexdigest(), headers["X-Botyard-Signature"])


class FakeDns:
    """Answers for some host names (others go to the real resolver); change them at will."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: dict[str, str] = {}
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host in self.names:
                self.lookups.append(host)
                ip = self.names[host]
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                return [(family, socket.SOCK_STREAM, 6, "", (ip, port))]
            return real(host, port, *args, **kwargs)

        monkeypatch.setattr(webhook_urls, "_getaddrinfo", getaddrinfo)


def drain_notifications(app: Flask) -> bool:
    """Run the ``notifications`` queue dry with the worker the Procfile runs (burst mode)."""
    return bool(build_worker(app, (NOTIFICATIONS,), simple=True).work(burst=True))
