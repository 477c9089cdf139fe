"""The Procfile's rq-dashboard listens on loopback only (a real process, its real socket)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
LISTEN = "0A"  # TCP state code in /proc/net/tcp
DEADLINE_S = 60.0


def procfile_command(name: str) -> str:
    """The command of the Procfile process ``name``."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        process, sep, command = line.partition(":")
        if sep and process.strip() == name:
            return command.strip()
    raise AssertionError(f"no {name} process in the Procfile")


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as the kernel writes them) of sockets listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == LISTEN and int(hex_port, 16) == port:
                found.add(address)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_procfile_binds_the_dashboard_to_loopback() -> None:
    assert "--bind 127.0.0.1 " in procfile_command("dashboard")


def test_the_dashboard_listens_on_loopback_only() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "REDIS_URL": REDIS_URL or "",
        "DASHBOARD_PORT": str(port),
        "RQ_DASHBOARD_BIND": "0.0.0.0",  # a stray setting must not widen it  # noqa: S104
    }
    process = subprocess.Popen(
        ["bash", "-c", f"exec {procfile_command('dashboard')}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + DEADLINE_S
        while not listening_addresses(port):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the dashboard did not start listening"
            time.sleep(0.1)
        assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing wider
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
