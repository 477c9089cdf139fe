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

    ``processes`` copies share the port (``SO_REUSEPORT``), as ``honcho start -c streams=N``
    would run them; each is its own worker for the CPU figures.
    """

    def __init__(self, env: Mapping[str, str], processes: int = 1, keep_log: bool = False) -> None:
        super().__init__(env, keep_log=keep_log)
        self.env = {**env, "STREAMS_PORT": str(self.port), "STREAMS_HOST": "127.0.0.1"}
        self.processes = processes
        self.procs: list[subprocess.Popen[bytes]] = []

    def command(self) -> list[str]:
        """The Procfile's command line."""
        return [str(VENV_BIN / "python"), "-m", "api.streams"]

    def __enter__(self) -> StreamsProcess:
        with self.log_path.open("ab") as log:
            for _ in range(self.processes):
                self.procs.append(
                    subprocess.Popen(
                        self.command(),
                        cwd=ROOT,
                        env=self.env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        self.proc = self.procs[0]
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        self.config = self.resolved_config()
        pids = [p.pid for p in self.procs]
        note(f"streams pids {pids} on 127.0.0.1:{self.port}: {self.config}")
        return self

    def _wait_listening(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise BenchError(f"streams exited {proc.returncode}:\n{self.log_tail()}")
            if all(self._listens(proc.pid) for proc in self.procs):
                return
            time.sleep(0.1)
        raise BenchError(f"streams did not listen within {timeout:.0f}s:\n{self.log_tail()}")

    def _listens(self, pid: int) -> bool:
        """Whether ``pid`` holds a listening socket on this port (its logs are at WARNING)."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    if port == self.port and fields[3] == "0A":  # LISTEN
                        inodes.add(f"socket:[{fields[9]}]")
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return True
        return False

    def stop(self, grace: float = 25) -> None:
        """TERM every copy, then KILL what is left."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                note(f"streams pid {proc.pid} did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)

    def resolved_config(self) -> dict[str, Any]:
        """The streams settings these processes run with."""
        names = (
            "SSE_MAX_STREAMS_PER_PROCESS",
            "SSE_MAX_STREAMS_PER_USER",
            "SSE_HEARTBEAT_S",
            "STREAMS_THREADS",
        )
        config: dict[str, Any] = {"server": "python -m api.streams", "processes": self.processes}
        config.update({n.lower(): self.env[n] for n in names if n in self.env})
        return config

    def worker_pids(self) -> list[int]:
        """Every copy: they have no workers of their own."""
        return [proc.pid for proc in self.procs]
