"""A real browser against the real stack: Debian's Chromium driven by Playwright.

Playwright's own browser download is not reachable from these machines, so it drives
``/usr/bin/chromium`` (scripts/test.sh installs Debian's ``chromium`` package). The stack
is the app under gunicorn, the streams process (which serves the page's EventSource) and an
RQ worker, on a database of their own; pages come from
small static servers on other loopback ports, so they are other origins.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright
from redis import Redis

from tests.helpers import PASSWORD, REDIS_URL
from tests.workers.processes import Procs, World, world_database

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing of Chromium's own phoning home: the tests see only their own traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE = Path(__file__).resolve().parent / "site"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in the test output."""


@contextmanager
def static_site() -> Iterator[str]:
    """Serve tests/browser/site on a loopback port of its own; yields its origin."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Stack:
    """The app (gunicorn), the streams process and a worker on a database of their own, and
    two page origins."""

    api: str
    streams: str  # the streams process's origin: the page's EventSource goes there
    page_origin: str  # in CORS_ORIGINS
    other_origin: str  # the same page, from an origin that is not
    world: World
    procs: Procs

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        """Call the API from the test (no Origin header); the decoded JSON body."""
        request = urllib.request.Request(self.api + path, method=method)  # noqa: S310
        if body is not None:
            request.add_header("Content-Type", "application/json")
            request.data = json.dumps(body).encode()
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return json.loads(response.read() or b"null")

    def token(self) -> str:
        """A fresh access token of the world's owner."""
        body = {"login": "owner", "password": PASSWORD}
        return str(self.call("POST", "/api/v1/auth/login", body)["access_token"])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn and the streams process serving the app with CORS_ORIGINS = one page origin,
    plus an RQ worker."""
    Redis.from_url(REDIS_URL or "").flushdb()  # no jobs or limits left by earlier tests
    with static_site() as page_origin, static_site() as other_origin, world_database() as world:
        port, streams_port = free_port(), free_port()
        env = {
            **world.env,
            "CORS_ORIGINS": page_origin,
            "WEB_PORT": str(port),
            "WEB_CONCURRENCY": "1",
            "WEB_THREADS": "24",
            "WEB_MAX_STREAMS": "8",
            "STREAMS_PORT": str(streams_port),
            "LOG_LEVEL": "WARNING",
        }
        procs = Procs(env, tmp_path_factory.mktemp("browser-stack"))
        try:
            procs.spawn("web", "gunicorn", "--config", "scripts/gunicorn_conf.py", "wsgi:app")
            procs.spawn("streams", "api.streams")
            procs.spawn("worker", "workers.main", "--queues", "backtests")
            api, streams = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{streams_port}"
            procs.wait_for(lambda: _ready(api + "/health/ready"), 60, "the web server")
            procs.wait_for(lambda: _ready(streams + "/health/live"), 60, "the streams process")
            yield Stack(api, streams, page_origin, other_origin, world, procs)
        finally:
            procs.kill_all()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: ./scripts/test.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
