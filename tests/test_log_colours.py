"""Log output that is not a terminal carries no ANSI escape codes (real processes, real pipes)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.helpers import REDIS_URL, create_database, drop_database
from workers.queues import get_queue

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b["


@pytest.fixture
def database_url() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def test_a_worker_logging_to_a_pipe_writes_no_escape_codes(database_url: str, redis: Redis) -> None:
    # A job that fails, so its traceback is logged too.
    get_queue("default", redis).enqueue("builtins.int", "not a number")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL or "",
        "BOTYARD_ENV": "test",
        "LOG_LEVEL": "INFO",
    }
    # stdout is a terminal (as under an interactive shell), stderr, where the logs go, is a
    # pipe: RQ colours queue names whenever stdout is a terminal, whatever the log stream.
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "workers.main", "--burst", "--queues", "default"],
            cwd=ROOT,
            env=env,
            stdout=follower,
            stderr=subprocess.PIPE,
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    logs = done.stderr.decode()
    assert done.returncode == 0, logs
    assert "Listening on" in logs and "default" in logs
    assert "Traceback (most recent call last)" in logs and "ValueError" in logs
    assert ESC not in logs


def test_the_scripts_messages_to_a_pipe_carry_no_escape_codes() -> None:
    script = f"source {ROOT / 'scripts/lib/bootstrap.sh'}; by_log hello"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert done.stderr == "[botyard] hello\n"


def test_honcho_running_the_processes_into_a_pipe_writes_no_escape_codes(tmp_path: Path) -> None:
    # As up.sh runs them: honcho, then processes that log through logconfig (an exception
    # included) and through the scripts' by_log.
    logs_an_error = (
        "import structlog; from logconfig import configure_logging; configure_logging(); "
        "log = structlog.get_logger('probe')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('probe_failed')"
    )
    (tmp_path / "probe.py").write_text(logs_an_error)
    procfile = tmp_path / "Procfile"
    # One process: honcho stops them all when the first one exits.
    procfile.write_text(
        f"app: bash -c '{sys.executable} {tmp_path / 'probe.py'}; "
        f"source {ROOT / 'scripts/lib/bootstrap.sh'}; by_log ready'\n"
    )
    honcho = Path(sys.executable).parent / "honcho"
    done = subprocess.run(
        [honcho, "start", "-f", procfile, "-d", ROOT],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    output = done.stdout + done.stderr
    assert "probe_failed" in output and "ZeroDivisionError" in output, output
    assert "[botyard] ready" in output
    assert ESC not in output
