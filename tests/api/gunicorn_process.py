"""A real ``web`` process for tests: gunicorn with scripts/gunicorn_conf.py on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@contextmanager
def running_gunicorn(database_url: str, **env: str) -> Iterator[int]:
    """Start gunicorn (``env`` on top of the test environment); yield its port once it answers."""
    port = free_port()
    full_env = {
        **os.environ,
        "WEB_PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "4",
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL or "",
        "BOTYARD_ENV": "test",
        **env,
    }
    full_env.pop("WEB_BIND", None)
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a full pipe would block it
        proc = subprocess.Popen(
            [str(GUNICORN), "--config", "scripts/gunicorn_conf.py", "wsgi:app"],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 60
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise AssertionError(log.read().decode(errors="replace")[-3000:])
                time.sleep(0.1)  # polling for readiness, not synchronising on timing
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=30)
