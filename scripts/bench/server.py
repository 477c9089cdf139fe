"""The server under test: gunicorn with scripts/gunicorn_conf.py (web) or the streams process."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import ROOT, VENV_BIN, BenchError, note


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    port: int, path: str, headers: Mapping[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One GET on loopback: status, headers (lower-cased names) and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=dict(headers or {}))
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


class Gunicorn:
    """``gunicorn --config scripts/gunicorn_conf.py wsgi:app`` on a free loopback port."""

    def __init__(
        self,
        env: Mapping[str, str],
        port: int | None = None,
        app: str = "wsgi:app",
        keep_log: bool = False,
    ) -> None:
        self.app, self.keep_log = app, keep_log
        self.port = port or free_port()
        self.env = {**env, "WEB_PORT": str(self.port)}
        self.env.pop("WEB_BIND", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.config: dict[str, Any] = {}
        self.log_path = Path(tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")[1])

    def command(self) -> list[str]:
        """The Procfile's `web` command line."""
        return [str(VENV_BIN / "gunicorn"), "--config", "scripts/gunicorn_conf.py", self.app]

    def resolved_config(self) -> dict[str, Any]:
        """What scripts/gunicorn_conf.py resolves to under this server's environment."""
        code = (
            "import json, runpy; c = runpy.run_path('scripts/gunicorn_conf.py'); "
            "print(json.dumps({k: c[k] for k in ('bind', 'worker_class', 'workers', 'threads', "
            "'worker_connections', 'keepalive', 'timeout')}))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        config: dict[str, Any] = json.loads(done.stdout)
        for name in ("WEB_MAX_STREAMS", "SSE_MAX_STREAMS_PER_USER"):
            if name in self.env:
                config[name.lower()] = self.env[name]
        return config

    def __enter__(self) -> Gunicorn:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the workers go with it
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.config = self.resolved_config()
        note(f"server pid {self.proc.pid} on 127.0.0.1:{self.port}: {self.config}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if exc[0] is None and not self.keep_log:
            self.log_path.unlink(missing_ok=True)
        else:
            note(f"server log kept at {self.log_path}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of gunicorn's output."""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def log_problems(self, most: int = 5) -> dict[str, Any]:
        """Error and warning lines the server logged so far (their count and the first few)."""
        text = self.log_path.read_text(errors="replace")
        marks = ("Traceback", "ERROR", "WARNING", "error", "warning", "CRITICAL")
        lines = [line for line in text.splitlines() if any(m in line for m in marks)]
        return {"count": len(lines), "first": [line[:300] for line in lines[:most]]}

    def _wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None  # noqa: S101 - set by __enter__
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(self.port, "/health/live", timeout=2)[0] == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"server did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, grace: float = 25) -> None:
        """TERM the master (graceful), then KILL its process group if anything is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                note("server did not stop in time; killing its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (children of the master)."""
        assert self.proc is not None  # noqa: S101
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def cpu_seconds(self) -> dict[int, float]:
        """User+system CPU seconds used so far by each worker."""
        ticks = os.sysconf("SC_CLK_TCK")
        used: dict[int, float] = {}
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[pid] = (int(fields[11]) + int(fields[12])) / ticks
        return used


class StreamsProcess(Gunicorn):
    """``python -m api.streams`` (the Procfile's `streams` process) on a free loopback port.

    Started, stopped and measured like :class:`Gunicorn`; its one process is its own worker.
    """

    def __init__(self, env: Mapping[str, str], keep_log: bool = False) -> None:
        super().__init__(env, keep_log=keep_log)
        self.env = {**env, "STREAMS_PORT": str(self.port), "STREAMS_HOST": "127.0.0.1"}

    def command(self) -> list[str]:
        """The Procfile's command line."""
        return [str(VENV_BIN / "python"), "-m", "api.streams"]

    def resolved_config(self) -> dict[str, Any]:
        """The streams settings this process runs with."""
        names = (
            "SSE_MAX_STREAMS_PER_PROCESS",
            "SSE_MAX_STREAMS_PER_USER",
            "SSE_HEARTBEAT_S",
            "STREAMS_THREADS",
        )
        config: dict[str, Any] = {"server": "python -m api.streams", "port": self.port}
        config.update({n.lower(): self.env[n] for n in names if n in self.env})
        return config

    def worker_pids(self) -> list[int]:
        """The process itself: it has no workers."""
        assert self.proc is not None  # noqa: S101
        return [self.proc.pid]
