"""Benchmark: the leaderboard recompute for 10,000 public bots, and reading the boards under load.

Data (made in a scratch database, deterministic): ``--bots`` public running bots (default
10,000) spread over ``--owners`` users, the seeded instruments and every strategy template,
each with a live run of ``--days`` days (default 90) of 4h equity marks (540 rows a run, 5.4
million in all) and a closed trade every other day. Stages, each timed:

1. ``rollup``: the first (cold) fold of every run's raw equity into daily rows
   (``models.performance.rollups``): a one-off; after it the work is incremental.
2. The baseline: merely reading the rows the recompute reads, as a binary COPY to the
   client without parsing them (``read_*_copy``): every daily rollup row, and every
   snapshot with its bot and owner. ``read_rollups_rows`` is the plain driver path
   (``fetchall`` into tuples) for comparison.
3. ``snapshots``: every run's four period snapshots from its rollups, all runs dirty (cold):
   the performance refresh job's worst case.
4. ``boards``: the leaderboard recompute itself (the job behind ``POST /leaderboards/recompute``):
   one generation from the snapshots: eligibility, dedupe, 16 rankings, the entries written
   and swapped in. The report gives it against merely reading what it reads (the snapshots
   with their bots and owners), and 3 + 4 (everything from the daily rollups) against both
   reads.
5. ``incremental``: one new 4h mark for every run, then rollups + snapshots + boards again.
6. Reads under load, served by gunicorn (scripts/gunicorn_conf.py), with each number of
   keep-alive connections in ``--clients`` for ``--seconds``: the bare ``/health/live``
   (what the server does at most at that concurrency), one page (50 entries) of the full
   board, authenticated, and the public preview (cached, first request after a new
   generation fills the cache), asked for gzip as browsers do and without it; errors
   counts non-2xx answers and failed requests. Each path gets ``WARM_UP_S`` of unreported
   load first. The report gives the preview's p99 over the
   bare endpoint's, per number of connections.

    .venv/bin/python scripts/bench/leaderboard.py [--bots 10000 --days 90 --json]

Needs Postgres and Redis (see ``--help``); makes and drops its own database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

import psycopg  # noqa: E402  (the harness checked it is installed)
from harness import (  # noqa: E402
    DEFAULT_REDIS_DB,
    BenchError,
    Services,
    emit,
    machine,
    note,
    prepare_database,
    run,
    table,
)
from loadgen import LoadGenerator, LoadSpec  # noqa: E402
from server import Gunicorn, http_get  # noqa: E402

from api.app import create_app  # noqa: E402
from models.db import session as db  # noqa: E402
from models.performance.rollups import roll_up  # noqa: E402
from models.performance.snapshots import recompute, refresh  # noqa: E402

BAR_MS = 4 * 3_600_000
DAY_MS = 86_400_000
TEMPLATES = (
    '{"template": "sma_crossover", "params": {"fast": @a, "slow": @b}}',
    '{"template": "ema_crossover", "params": {"fast": @a, "slow": @b}}',
    '{"template": "rsi_mean_reversion", "params": {"period": @a}}',
    '{"template": "donchian_breakout", "params": {"period": @b}}',
    '{"rules": {"entry": {"ref": @a}, "exit": {"ref": @b}}}',
)
PASSWORD = "bench-password-1234"  # noqa: S105 - a scratch account in a scratch database
BOARD = "/api/v1/leaderboards?period=30d&metric=sharpe&limit=50"
PREVIEW = "/api/v1/leaderboards/preview"
# The preview as a browser asks for it; without the header it is the 100 KB identity body.
GZIP = {"Accept-Encoding": "gzip, deflate, br"}
# No I/O, a small JSON body: what the same server does at most, measured in the same run.
BARE = "/health/live"
# Unreported load on each path before it is measured: new server threads and connections.
WARM_UP_S = 2.0
LIMITS = {
    "RATE_LIMIT_USER": "100000000/minute",
    "RATE_LIMIT_ANONYMOUS": "100000000/minute",
    "RATE_LIMIT_LEADERBOARD_PREVIEW": "100000000/minute",
}


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bots", type=int, default=10_000, help="public bots with a live run")
    parser.add_argument("--owners", type=int, default=2_500, help="users owning them")
    parser.add_argument("--days", type=int, default=90, help="days of equity per run")
    parser.add_argument(
        "--clients", default="4,32", help="concurrent connections, one load run per number"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per path")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def make_data(database_url: str, bots: int, owners: int, days: int, now_ms: int) -> int:
    """Owners, public running bots, their runs, 4h equity marks and trades; the last mark's ts."""
    bars = days * DAY_MS // BAR_MS
    start = (now_ms // DAY_MS - days) * DAY_MS
    last_ts = start + (bars - 1) * BAR_MS
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        note(f"{owners} owners, {bots} bots and runs")
        conn.execute(
            """
            INSERT INTO users (id, email, email_key, username, username_key, password_hash)
            SELECT gen_random_uuid(), 'owner' || i || '@bench.example',
                   'owner' || i || '@bench.example', 'owner' || i, 'owner' || i, 'x'
            FROM generate_series(1, %s) i
            """,
            (owners,),
        )
        conn.execute(
            """
            WITH owner AS (SELECT id, row_number() OVER (ORDER BY username) - 1 AS n FROM users
                           WHERE username LIKE 'owner%%'),
                 inst AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n,
                                 count(*) OVER () AS k FROM instruments)
            INSERT INTO bots (id, owner_id, name, instrument_id, timeframe, strategy, risk,
                              initial_capital, fee, slippage_bps, status, visibility)
            SELECT gen_random_uuid(), owner.id, 'bench bot ' || i, inst.id, '4h',
                   replace(replace((%s::text[])[1 + i %% 5], '@a', (2 + i %% 17)::text),
                           '@b', (20 + i %% 31)::text)::jsonb,
                   '{}'::jsonb, 10000, 0.001, 5, 'running', 'public'
            FROM generate_series(0, %s - 1) i
            JOIN owner ON owner.n = i %% %s
            JOIN inst ON inst.n = i %% inst.k
            """,
            (list(TEMPLATES), bots, owners),
        )
        conn.execute(
            """
            INSERT INTO bot_runs (id, bot_id, owner_id, status, started_at, initial_capital,
                                  broker_state, last_candle_ts)
            SELECT gen_random_uuid(), id, owner_id, 'running', to_timestamp(%s / 1000.0),
                   10000, '{"cash": 10000, "units": 0}', %s
            FROM bots WHERE name LIKE 'bench bot %%'
            """,
            (start, last_ts),
        )
        note(f"{bots * bars:,} equity marks")
        conn.execute(
            """
            INSERT INTO bot_equity (run_id, ts, equity)
            SELECT run_id, ts, 10000 * exp(sum(r) OVER (PARTITION BY run_id ORDER BY ts))
            FROM (SELECT runs.id AS run_id, %s::bigint + k::bigint * %s AS ts,
                         (random() - 0.497) * 0.03 AS r
                  FROM bot_runs runs JOIN bots ON bots.id = runs.bot_id,
                       generate_series(0, %s - 1) k
                  WHERE bots.name LIKE 'bench bot %%') marks
            """,
            (start, BAR_MS, bars),
        )
        note("trades")
        conn.execute(
            """
            INSERT INTO bot_trades (run_id, client_order_id, side, units, entry_ts, entry_price,
                                    exit_ts, exit_price, fees, pnl, pnl_pct, exit_reason)
            SELECT runs.id, 'bench-' || j, 'long', 1, %s::bigint + j::bigint * 2 * %s,
                   100, %s::bigint + (j::bigint * 2 + 1) * %s, 100 + p, 0.2, p - 0.2,
                   (p - 0.2) / 100, 'signal'
            FROM bot_runs runs JOIN bots ON bots.id = runs.bot_id, generate_series(0, %s - 1) j,
                 LATERAL (SELECT (random() - 0.45) * 10 AS p) pnl
            WHERE bots.name LIKE 'bench bot %%'
            """,
            (start, DAY_MS, start, DAY_MS, days // 2),
        )
        conn.execute("ANALYZE")
    return last_ts


def timed(label: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; seconds taken and its result."""
    note(label)
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


# What the two halves of the recompute read: every daily rollup row (the snapshots), and
# every public bot's snapshots with its bot and owner (the boards).
ROLLUP_ROWS = """
SELECT run_id, day, first_ts, last_ts, bars, close, high, low, max_drawdown, trades, wins,
       gross_profit, gross_loss
FROM run_daily_equity
"""
BOARD_ROWS = """
SELECT p.*, b.id, b.owner_id, b.name, b.strategy, b.risk, b.instrument_id, b.timeframe,
       b.visibility, b.status, b.hidden_at, b.created_at, u.username, u.is_active,
       u.disabled_at, u.deletion_requested_at
FROM run_performance p
JOIN bot_runs r ON r.id = p.run_id
JOIN bots b ON b.id = r.bot_id
JOIN users u ON u.id = b.owner_id
"""


def read_copy(database_url: str, query: str) -> int:
    """Merely read the rows: binary COPY to the client, not parsed; bytes received."""
    received = 0
    with (
        psycopg.connect(database_url) as conn,
        conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        for chunk in copy:
            received += len(chunk)
    return received


def read_rows(database_url: str, query: str) -> int:
    """Read the rows as Python tuples (the plain driver path); rows read."""
    with psycopg.connect(database_url) as conn:
        return len(conn.execute(query).fetchall())


def main() -> int:
    """Set up, measure, report."""
    args = parse_args()
    services = Services.from_env(os.environ, args.redis_db)
    services.check()
    with services.scratch():
        env = services.app_env(**LIMITS)
        prepare_database(env, seed_days=0)
        now_ms = int(time.time() * 1000)
        gen_s, last_ts = timed(
            "generating data",
            lambda: make_data(services.database_url, args.bots, args.owners, args.days, now_ms),
        )
        report: dict[str, Any] = {
            "machine": machine(),
            "bots": args.bots,
            "days": args.days,
            "generate_s": round(gen_s, 1),
        }
        report.update(measure(services, env, args, last_ts))
    emit(report, args.json, render)
    return 0


def in_app(env: dict[str, str]) -> Any:
    """The app over the scratch database, for calling the recompute in this process."""
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "BOTYARD_ENV")})
    return create_app()


def add_one_bar(database_url: str, last_ts: int) -> int:
    """A new 4h mark for every bench run (the next bar), as ticks would write it."""
    ts = last_ts + BAR_MS
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO bot_equity (run_id, ts, equity)
            SELECT e.run_id, %s, e.equity * (1 + (random() - 0.5) * 0.02)
            FROM bot_equity e WHERE e.ts = %s
            """,
            (ts, last_ts),
        )
        conn.execute(
            "UPDATE bot_runs SET last_candle_ts = %s WHERE last_candle_ts = %s", (ts, last_ts)
        )
    return ts


def measure(
    services: Services, env: dict[str, str], args: argparse.Namespace, last_ts: int
) -> dict[str, Any]:
    """The timed stages, then the reads under load."""
    app = in_app(env)
    stages: dict[str, float] = {}

    def committed(fn: Callable[[], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with app.app_context():
                result = fn()
                db.commit()
                return result

        return call

    stages["rollup_cold_s"], rolled = timed("cold rollup", committed(roll_up))
    url = services.database_url
    stages["read_rollups_copy_s"], _ = timed("read rollups", lambda: read_copy(url, ROLLUP_ROWS))
    stages["read_rollups_rows_s"], rows_read = timed(
        "read rollups as rows", lambda: read_rows(url, ROLLUP_ROWS)
    )
    stages["snapshots_s"], _ = timed("snapshots", committed(lambda: recompute(list(rolled))))
    stages["read_board_rows_copy_s"], _ = timed("read", lambda: read_copy(url, BOARD_ROWS))
    stages["boards_s"], generation = timed("leaderboard generation", recompute_in(app))
    stages["from_rollups_s"] = stages["snapshots_s"] + stages["boards_s"]
    baseline = stages["read_rollups_copy_s"] + stages["read_board_rows_copy_s"]
    add_one_bar(services.database_url, last_ts)
    stages["incremental_refresh_s"], counts = timed("incremental refresh", committed(refresh))
    stages["incremental_boards_s"], _ = timed("leaderboard generation", recompute_in(app))
    return {
        "runs_rolled": len(rolled),
        "rows_read": rows_read,
        "stages": {key: round(value, 3) for key, value in stages.items()},
        "recompute_vs_read": round(stages["boards_s"] / stages["read_board_rows_copy_s"], 2),
        "snapshots_vs_read": round(stages["snapshots_s"] / stages["read_rollups_copy_s"], 2),
        "from_rollups_vs_reads": round(stages["from_rollups_s"] / baseline, 2),
        "incremental": counts,
        "generation": generation,
        "reads": reads(env, args),
    }


def recompute_in(app: Any) -> Callable[[], Any]:
    """One leaderboard generation, called as the worker calls it."""
    from workers.leaderboards import recompute_leaderboards  # noqa: PLC0415  (lands next)

    def call() -> Any:
        with app.app_context():
            return recompute_leaderboards()

    return call


def token_of(port: int) -> str:
    """Register the reader and log in; its access token."""
    user = {"email": "reader@example.com", "username": "reader", "password": PASSWORD}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for path, body, wanted in (
            ("/api/v1/auth/register", user, 201),
            ("/api/v1/auth/login", {"login": "reader", "password": PASSWORD}, 200),
        ):
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read() or b"null")
            if response.status != wanted:
                raise BenchError(f"{path} answered {response.status}: {answer}")
    finally:
        conn.close()
    return str(answer["access_token"])


def reads(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """p50/p99 of the bare endpoint, a full-board page and the preview, under load."""
    levels = [int(n) for n in str(args.clients).split(",")]
    out: dict[str, Any] = {"runs": []}
    with Gunicorn(env) as server:
        headers = {"Authorization": f"Bearer {token_of(server.port)}"}
        # The first preview after a generation fills the cache: time that one alone.
        began = time.perf_counter()
        status, _, body = http_get(server.port, PREVIEW)
        out["preview_cold_ms"] = round((time.perf_counter() - began) * 1000, 2)
        out["preview_bytes"] = len(body)
        if status != 200:
            raise BenchError(f"{PREVIEW} answered {status}")
        status, sent_headers, body = http_get(server.port, PREVIEW, GZIP)
        if status != 200 or sent_headers.get("content-encoding") != "gzip":
            raise BenchError(f"{PREVIEW} answered {status} {sent_headers} to {GZIP}")
        out["preview_gzip_bytes"] = len(body)
        status, _, body = http_get(server.port, BOARD, headers)
        if status != 200 or not json.loads(body)["entries"]:
            raise BenchError(f"{BOARD} answered {status} with no entries")
        out["board_bytes"] = len(body)
        # The board first: the cheap paths measured after it are not measured while
        # Postgres still works off its load, and after a warm-up of their own.
        paths = (
            ("board", BOARD, headers),
            ("bare", BARE, {}),
            ("preview gzip", PREVIEW, GZIP),
            ("preview", PREVIEW, {}),
        )
        for clients in levels:
            spec = LoadSpec(threads=min(2, clients), connections=clients, duration=args.seconds)
            load = LoadGenerator(spec)
            out["tool"] = load.tool
            warm_up = LoadGenerator(LoadSpec(spec.threads, clients, WARM_UP_S))
            for name, path, sent in paths:
                warm_up.run(server.port, path, sent)
                note(f"load on {name} {path}, {clients} connections")
                result = load.run(server.port, path, sent).as_dict()
                out["runs"].append({"what": name, "clients": clients, **result})
        out["server"] = server.resolved_config()
    return out


def render(report: dict[str, Any]) -> str:
    """The readable report."""
    stages = report["stages"]
    rows = [[name.removesuffix("_s"), f"{value:.3f}"] for name, value in stages.items()]
    reads = report["reads"]
    shown = ("what", "clients", "rps", "p50_ms", "p99_ms")
    load_rows = [
        [*(run[key] for key in shown), run["non_2xx"] + run["errors"]] for run in reads["runs"]
    ]
    return "\n".join(
        [
            f"machine: {report['machine']}",
            f"{report['bots']:,} public bots, {report['days']} days of 4h equity each "
            f"(data made in {report['generate_s']} s)",
            "",
            table("stages (seconds)", ["stage", "s"], rows),
            f"leaderboard recompute (boards): {stages['boards_s']:.3f} s, "
            f"{report['recompute_vs_read']}x merely reading its input; snapshots (all runs "
            f"dirty): {report['snapshots_vs_read']}x reading the day rows; both from the "
            f"rollups: {stages['from_rollups_s']:.3f} s, {report['from_rollups_vs_reads']}x "
            f"both reads",
            f"generation: {report['generation']}",
            "",
            table(
                f"reads ({reads['tool']}): bare = {BARE}, board = {BOARD} "
                f"({reads['board_bytes']:,} bytes), preview = {PREVIEW} "
                f"({reads['preview_bytes']:,} bytes; {reads['preview_gzip_bytes']:,} gzipped, "
                f"as 'preview gzip' asks); the first preview after a generation took "
                f"{reads['preview_cold_ms']} ms",
                ["read", "connections", "req/s", "p50 ms", "p99 ms", "errors"],
                load_rows,
            ),
            *against_bare(reads["runs"]),
        ]
    )


def against_bare(runs: list[dict[str, Any]]) -> list[str]:
    """One line per number of connections: the preview's p99 over the bare endpoint's."""
    lines = []
    for clients in sorted({r["clients"] for r in runs}):
        p99 = {r["what"]: r["p99_ms"] for r in runs if r["clients"] == clients}
        if p99.get("bare"):
            lines.append(
                f"{clients} connections: p99 preview gzip / bare = "
                f"{p99['preview gzip']} / {p99['bare']} ms "
                f"({p99['preview gzip'] / p99['bare']:.2f}x); identity preview / bare = "
                f"{p99['preview'] / p99['bare']:.2f}x"
            )
    return lines


if __name__ == "__main__":
    run(main)
