"""Benchmark: the cost of activity recording per request, with and without it, same run.

One authenticated request that records an activity row, ``PATCH /api/v1/bots/{id}``
(``bot.updated``: the view's own commit, then the row written after the view in its own
transaction), against gunicorn started with ``ACTIVITY_TRACKING=0`` (the baseline: ``track()``
does nothing) and ``ACTIVITY_TRACKING=1``, alternately (off, on, off, on, ...). Each run sends
``--requests`` requests from ``--clients`` keep-alive connections after a warm-up and records
every request's latency and the gunicorn workers' CPU time; the report gives p50/p99/mean
latency and server CPU ms per request for each mode (the median over rounds), the ratio
recording/baseline and the difference. The rows written are counted as a check.

    .venv/bin/python scripts/bench/activity.py [--requests 1000 --clients 1 --rounds 3 --json]

Needs Postgres and Redis (see ``--help``); makes and drops its own database.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

import psycopg  # noqa: E402  (the harness checked it is installed)
from harness import (  # noqa: E402
    DEFAULT_REDIS_DB,
    BenchError,
    Services,
    cpu_jiffies,
    emit,
    machine,
    machine_busy_pct,
    note,
    percentile,
    prepare_database,
    run,
    table,
)
from server import Gunicorn  # noqa: E402

FIGURES = ("rps", "p50_ms", "p99_ms", "mean_ms", "server_cpu_ms")
PASSWORD = "bench-password-1234"  # noqa: S105 - a scratch account in a scratch database
BOT = {
    "name": "bench",
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}},
}
# Generous budgets: the bench measures recording, not the rate limiter's refusals.
LIMITS = {
    "RATE_LIMIT_USER": "1000000/minute",
    "RATE_LIMIT_ANONYMOUS": "1000000/minute",
    "RATE_LIMIT_LOGIN_IP": "1000/minute",
    "RATE_LIMIT_LOGIN_ACCOUNT": "1000/minute",
    "RATE_LIMIT_LOGIN_ACCOUNT_IP": "1000/minute",
    "RATE_LIMIT_REGISTER_IP": "1000/minute",
}


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per run")
    parser.add_argument("--clients", type=int, default=1, help="concurrent keep-alive clients")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per run")
    parser.add_argument("--rounds", type=int, default=3, help="off+on pairs (median)")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def call(
    conn: http.client.HTTPConnection, method: str, path: str, body: Any, token: str | None = None
) -> tuple[int, Any]:
    """One JSON request on a kept-alive connection: status and parsed body."""
    headers = {"Content-Type": "application/json", "User-Agent": "bench-activity/1"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body), headers=headers)
    response = conn.getresponse()
    raw = response.read()
    return response.status, json.loads(raw) if raw else None


def set_up(port: int) -> tuple[str, str]:
    """Register the bench user, create its bot; returns (password login body, bot id)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    user = {"email": "bench@example.com", "username": "bench_user", "password": PASSWORD}
    status, body = call(conn, "POST", "/api/v1/auth/register", user)
    if status != 201:
        raise BenchError(f"register answered {status}: {body}")
    token = login(port)
    status, body = call(conn, "POST", "/api/v1/bots", BOT, token)
    if status != 201:
        raise BenchError(f"create bot answered {status}: {body}")
    conn.close()
    return token, str(body["id"])


def login(port: int) -> str:
    """An access token of the bench user."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    status, body = call(
        conn, "POST", "/api/v1/auth/login", {"login": "bench_user", "password": PASSWORD}
    )
    conn.close()
    if status != 200:
        raise BenchError(f"login answered {status}: {body}")
    return str(body["access_token"])


def load(port: int, token: str, bot_id: str, requests: int, clients: int) -> list[float]:
    """``requests`` PATCHes spread over ``clients`` connections; every latency in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def client(count: int, seed: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for i in range(count):
            body = {"fee": 0.001 if (i + seed) % 2 else 0.002}
            began = time.perf_counter()
            status, answer = call(conn, "PATCH", f"/api/v1/bots/{bot_id}", body, token)
            mine.append((time.perf_counter() - began) * 1000)
            if status != 200:
                errors.append(f"{status}: {answer}")
                break
        conn.close()
        with lock:
            latencies.extend(mine)

    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=client, args=(n, i)) for i, n in enumerate(share)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"PATCH failed: {errors[0]}")
    return latencies


def activity_rows(services: Services) -> int:
    """bot.updated rows in the scratch database."""
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM activities WHERE verb = 'bot.updated'").fetchone()
    return int(row[0]) if row else 0


def measure(services: Services, env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Alternate the two modes ``rounds`` times; each run on a fresh gunicorn."""
    token, bot_id = "", ""
    runs: list[dict[str, Any]] = []
    for round_no in range(1, args.rounds + 1):
        for mode, flag in (("off", "0"), ("on", "1")):
            with Gunicorn({**env, "ACTIVITY_TRACKING": flag}) as server:
                if not bot_id:
                    token, bot_id = set_up(server.port)
                token = login(server.port)
                load(server.port, token, bot_id, args.warmup, args.clients)
                rows_before = activity_rows(services)
                note(f"round {round_no}/{args.rounds}: recording {mode}, {args.requests} requests")
                box_before, began = cpu_jiffies(), time.perf_counter()
                cpu_before = server.cpu_seconds()
                samples = load(server.port, token, bot_id, args.requests, args.clients)
                wall = time.perf_counter() - began
                cpu_after = server.cpu_seconds()
                cpu = sum(cpu_after.get(pid, used) - used for pid, used in cpu_before.items())
                runs.append(
                    {
                        "round": round_no,
                        "recording": mode,
                        "requests": len(samples),
                        "rps": round(len(samples) / wall, 1),
                        "p50_ms": round(percentile(samples, 50), 2),
                        "p99_ms": round(percentile(samples, 99), 2),
                        "mean_ms": round(statistics.fmean(samples), 2),
                        "server_cpu_ms": round(1000 * cpu / len(samples), 2),
                        "rows_written": activity_rows(services) - rows_before,
                        "machine_cpu_pct": round(machine_busy_pct(box_before, cpu_jiffies())),
                        "server_problems": server.log_problems()["count"],
                    }
                )
    median = {
        mode: {
            key: round(statistics.median(r[key] for r in runs if r["recording"] == mode), 2)
            for key in FIGURES
        }
        for mode in ("off", "on")
    }
    ratio = {
        key: round(median["on"][key] / median["off"][key], 3) if median["off"][key] else None
        for key in FIGURES
    }
    extra = {key: round(median["on"][key] - median["off"][key], 2) for key in FIGURES[1:]}
    return {"runs": runs, "median": median, "ratio_on_off": ratio, "added": extra}


def render(report: dict[str, Any]) -> str:
    """The readable report."""
    header = ["round", "recording", "requests", "rps", "p50 ms", "p99 ms", "mean ms"]
    header += ["cpu ms/req", "rows", "machine cpu %"]
    keys = ("round", "recording", "requests", *FIGURES, "rows_written", "machine_cpu_pct")
    runs = [[r[key] for key in keys] for r in report["runs"]]
    median = report["median"]
    summary: list[list[Any]] = [
        [mode, *(median[mode][key] for key in FIGURES)] for mode in ("off", "on")
    ]
    summary.append(["on/off", *(report["ratio_on_off"][key] for key in FIGURES)])
    return "\n".join(
        [
            f"machine: {report['machine']}",
            f"server: {report['server']}, {report['clients']} clients",
            "",
            table("PATCH /api/v1/bots/{id} (bot.updated), every run", header, runs),
            table(
                "median over rounds",
                ["recording", "rps", "p50 ms", "p99 ms", "mean ms", "cpu ms/req"],
                summary,
            ),
            "added by recording (ms): "
            + ", ".join(f"{key} {value}" for key, value in report["added"].items()),
        ]
    )


def main() -> int:
    """Set up, measure, report."""
    args = parse_args()
    services = Services.from_env(os.environ, args.redis_db)
    services.check()
    with services.scratch():
        env = services.app_env(**LIMITS)
        prepare_database(env, seed_days=0)
        probe = Gunicorn(env)
        report: dict[str, Any] = {
            "machine": machine(),
            "server": probe.resolved_config(),
            "clients": args.clients,
        }
        probe.log_path.unlink(missing_ok=True)
        report.update(measure(services, env, args))
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    run(main)
