"""Shared set-up for the benchmarks in scripts/bench/: services, a scratch database, reports.

Benchmarks print figures; they are not tests and assert nothing. A run never touches
user data: it makes its own Postgres database (``botyard_bench_<pid>``, dropped at the
end) on the configured server and uses its own Redis database number (flushed at the
start and the end). Progress goes to stderr so that stdout carries only the report.
server.py runs the web process under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
RUN_DIR = ROOT / "var" / "run"


def _local_port(name: str, default: int) -> int:
    """The port the bootstrap recorded for a project-local server (it may skip busy ones)."""
    try:
        return int((RUN_DIR / f"{name}.port").read_text().strip())
    except (OSError, ValueError):
        return default


DEFAULT_PG_URL = f"postgresql://botyard@127.0.0.1:{_local_port('pg', 54329)}/postgres"
DEFAULT_REDIS_URL = f"redis://127.0.0.1:{_local_port('redis', 63790)}/"
DEFAULT_REDIS_DB = 14  # the test suite uses 15, development 0
BENCH_DB_PREFIX = "botyard_bench_"
START_HINT = """\
Postgres and Redis are not answering. Start the project-local ones (ports 54329 and 63790,
data under var/) from the project root with one of:
    ./scripts/up.sh        (everything, in the foreground)
    bash -c 'source scripts/lib/bootstrap.sh; ensure_venv; ensure_postgres; ensure_redis'
or point DATABASE_URL and REDIS_URL at servers of your own."""

try:
    import psycopg
    from redis import Redis
    from redis.exceptions import RedisError
except ImportError:  # pragma: no cover - depends on the interpreter used
    print(
        f"The benchmarks need the project's virtualenv: run them with {VENV_BIN}/python",
        file=sys.stderr,
    )
    raise SystemExit(2) from None


class BenchError(RuntimeError):
    """The benchmark cannot go on (the message says why)."""


class ServicesUnavailable(BenchError):
    """Postgres or Redis does not answer."""


def note(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Machine-wide CPU use between two cpu_jiffies() readings, in % of one CPU (2 CPUs: 200)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return round(100 * (os.cpu_count() or 1) * busy / total, 1) if total else 0.0


def raise_nofile(wanted: int) -> int:
    """Raise this process's soft open-files limit towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _plain_pg(url: str) -> str:
    """``postgresql+psycopg://`` and ``postgres://`` as libpq understands them."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


@dataclass(frozen=True)
class Services:
    """Where Postgres and Redis are, and the bench's own database and Redis number."""

    pg_url: str
    redis_url: str
    redis_db: int
    bench_db: str = field(default_factory=lambda: f"{BENCH_DB_PREFIX}{os.getpid()}")

    @classmethod
    def from_env(cls, env: Mapping[str, str], redis_db: int = DEFAULT_REDIS_DB) -> Services:
        """DATABASE_URL / REDIS_URL when set, else the project-local services."""
        pg_url = _plain_pg(env.get("DATABASE_URL") or DEFAULT_PG_URL)
        redis_url = env.get("REDIS_URL") or DEFAULT_REDIS_URL
        return cls(pg_url, _with_path(redis_url, f"/{redis_db}"), redis_db)

    @property
    def database_url(self) -> str:
        """The scratch database's URL."""
        return _with_path(self.pg_url, f"/{self.bench_db}")

    def check(self) -> None:
        """Raise ServicesUnavailable unless both servers answer."""
        try:
            with psycopg.connect(self.pg_url, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ServicesUnavailable(f"Postgres at {self._where(self.pg_url)}: {exc}") from exc
        try:
            self.redis().ping()
        except RedisError as exc:
            raise ServicesUnavailable(f"Redis at {self._where(self.redis_url)}: {exc}") from exc

    @staticmethod
    def _where(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}"

    def redis(self) -> Redis:
        """A client on the bench's Redis database."""
        return Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=10)

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.pg_url, autocommit=True, connect_timeout=3)

    @contextlib.contextmanager
    def scratch(self) -> Iterator[None]:
        """Create the bench database and flush the bench Redis number; undo both at exit."""
        with self._admin() as conn:
            self._drop_stale(conn)
            conn.execute(f'CREATE DATABASE "{self.bench_db}"')
        self.redis().flushdb()
        note(f"scratch database {self.bench_db}, Redis db {self.redis_db} (flushed)")
        try:
            yield
        finally:
            with contextlib.suppress(RedisError):
                self.redis().flushdb()
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.bench_db}" WITH (FORCE)')
            note(f"dropped {self.bench_db}, flushed Redis db {self.redis_db}")

    @staticmethod
    def _drop_stale(conn: psycopg.Connection[Any]) -> None:
        """Drop bench databases left by runs that were killed (their pid is gone)."""
        names = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{BENCH_DB_PREFIX}%",)
        ).fetchall()
        for (name,) in names:
            pid = name.removeprefix(BENCH_DB_PREFIX)
            if pid.isdigit() and not _alive(int(pid)):
                note(f"dropping {name}, left by a run that is gone")
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def app_env(self, **extra: str) -> dict[str, str]:
        """Environment for the flask CLI and gunicorn, pointed at the scratch services."""
        env = dict(os.environ)
        env.update(
            FLASK_APP="wsgi:app",
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            BOTYARD_ENV="development",
            LOG_LEVEL="WARNING",
        )
        env.update(extra)
        return env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def flask_cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 600) -> str:
    """Run ``flask <args>`` in the project root; BenchError with the output's tail on failure."""
    done = subprocess.run(
        [str(VENV_BIN / "flask"), *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise BenchError(f"`flask {' '.join(args)}` exited {done.returncode}:\n{tail}")
    return done.stdout


def prepare_database(
    env: Mapping[str, str], seed_days: int, attempts: int = 1, retry_wait: float = 30
) -> None:
    """Migrate the scratch database and seed instruments plus ``seed_days`` of 1m history.

    With ``attempts`` > 1 a failing step is retried after ``retry_wait`` seconds (useful
    while the code under measurement is being edited); both steps are idempotent.
    """
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        try:
            note("flask db upgrade")
            flask_cli(["db", "upgrade"], env)
            note(f"flask seed --days {seed_days}")
            flask_cli(["seed", "--days", str(seed_days)], env)
        except BenchError as exc:
            if attempt == attempts:
                raise
            note(f"failed (attempt {attempt}/{attempts}); retrying in {retry_wait:.0f}s\n{exc}")
            time.sleep(retry_wait)
            continue
        note(f"database ready in {time.perf_counter() - started:.1f}s")
        return


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned figures."""
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([title, rule, line(cells[0]), rule, *(line(r) for r in cells[1:]), ""])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def emit(report: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], str]) -> None:
    """Print the report: one JSON object, or the readable tables."""
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=False))
    else:
        print(render(report))


def run(main: Callable[[], int]) -> None:
    """Run a benchmark's main: exit 2 with the start hint when services are down."""
    try:
        code = main()
    except ServicesUnavailable as exc:
        print(f"{exc}\n\n{START_HINT}", file=sys.stderr)
        code = 2
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
