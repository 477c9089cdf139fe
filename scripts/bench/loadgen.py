"""Closed-loop HTTP load: wrk when it is installed, else keep-alive http.client in processes."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from harness import BenchError, note, percentile

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class LoadSpec:
    """The same settings for every endpoint: threads (wrk) or processes, connections, seconds."""

    threads: int = 2
    connections: int = 32
    duration: float = 10.0


@dataclass(frozen=True)
class LoadResult:
    """One load run against one URL."""

    tool: str
    path: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return asdict(self)


def ensure_wrk(allow_install: bool) -> str | None:
    """Path of wrk; installs the Debian package when missing, allowed and root."""
    found = shutil.which("wrk")
    if found or not allow_install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    note("wrk is missing; apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)
    return shutil.which("wrk")


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise BenchError(f"cannot read wrk duration {text!r}")
    return float(match.group(1)) * UNIT_MS[match.group(2)]


def parse_wrk(output: str, path: str) -> LoadResult:
    """Figures from ``wrk --latency`` output."""

    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return match

    done = find(r"^\s*(\d+) requests in ([\d.]+\w+)")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return LoadResult(
        tool="wrk",
        path=path,
        requests=int(done.group(1)),
        seconds=_ms(done.group(2)) / 1000,
        rps=float(find(r"^Requests/sec:\s*([\d.]+)").group(1)),
        p50_ms=_ms(find(r"^\s*50%\s+(\S+)").group(1)),
        p99_ms=_ms(find(r"^\s*99%\s+(\S+)").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def run_wrk(
    wrk: str, port: int, path: str, spec: LoadSpec, headers: Mapping[str, str] | None = None
) -> LoadResult:
    """One wrk run against ``http://127.0.0.1:<port><path>``, sending ``headers``."""
    args = [wrk, f"-t{spec.threads}", f"-c{spec.connections}", f"-d{spec.duration:g}s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    args += ["--latency", f"http://127.0.0.1:{port}{path}"]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=spec.duration + 60, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout, path)


def _python_worker(
    port: int, path: str, connections: int, duration: float, headers: dict[str, str]
) -> dict[str, Any]:
    """One load process: ``connections`` threads, each a keep-alive connection in a loop."""
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    lock = threading.Lock()
    start_at = time.monotonic() + 0.2
    deadline = start_at + duration

    def loop() -> None:
        mine: list[float] = []
        bad = errors = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        time.sleep(max(0.0, start_at - time.monotonic()))
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            mine.append((time.perf_counter() - began) * 1000)
            bad += not 200 <= response.status < 400
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["non_2xx"] += bad
            counts["errors"] += errors

    threads = [threading.Thread(target=loop) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "seconds": duration, **counts}


def run_python(
    port: int, path: str, spec: LoadSpec, headers: Mapping[str, str] | None = None
) -> LoadResult:
    """The fallback load generator: ``spec.threads`` processes sharing the connections."""
    procs = max(1, spec.threads)
    shares = [spec.connections // procs + (i < spec.connections % procs) for i in range(procs)]
    with ProcessPoolExecutor(procs) as pool:
        futures = [
            pool.submit(_python_worker, port, path, share, spec.duration, dict(headers or {}))
            for share in shares
        ]
        parts = [f.result() for f in futures]
    latencies = [ms for part in parts for ms in part["latencies"]]
    return LoadResult(
        tool="python",
        path=path,
        requests=len(latencies),
        seconds=spec.duration,
        rps=len(latencies) / spec.duration,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        non_2xx=sum(p["non_2xx"] for p in parts),
        errors=sum(p["errors"] for p in parts),
    )


class LoadGenerator:
    """Runs a LoadSpec against paths with whichever tool is available."""

    def __init__(self, spec: LoadSpec, tool: str = "auto", allow_install: bool = True) -> None:
        self.spec = spec
        self.wrk = None if tool == "python" else ensure_wrk(allow_install)
        if tool == "wrk" and self.wrk is None:
            raise BenchError("wrk was asked for but is not installed (apt-get install wrk)")
        self.tool = "wrk" if self.wrk else "python"
        self.version = "python http.client (keep-alive), processes x threads"
        if self.wrk:
            with contextlib.suppress(OSError):
                shown = subprocess.run(
                    [self.wrk, "-v"], capture_output=True, text=True, check=False
                )
                self.version = ((shown.stdout + shown.stderr).strip().splitlines() or ["wrk"])[0]

    def run(self, port: int, path: str, headers: Mapping[str, str] | None = None) -> LoadResult:
        """One closed-loop run of the spec against ``path``, sending ``headers``."""
        if self.wrk:
            return run_wrk(self.wrk, port, path, self.spec, headers)
        return run_python(port, path, self.spec, headers)
