"""Backtests: the engine against bare numpy, and POST-to-succeeded through the whole system.

Usage: .venv/bin/python scripts/bench/backtest.py [--runs 10] [--engine-bars 1000000] [--json]

1. Engine: ``scripts/bench/backtest_engine.py``'s comparison (SMA 50/200 on a million
   synthetic 1m bars, the engine against a vectorized numpy reference), run here first.
2. End to end: in a scratch database with a year of BTC-USD history, gunicorn (the
   project's config) and ONE worker process (``python -m workers.main --queues backtests``,
   running jobs in-process as in the Procfile; ``--fork`` for a work horse per job), it
   times ``POST /api/v1/backtests``
   (a one-year 1h SMA crossover, 8,760 bars) until a ``GET`` polled every 2 ms shows
   ``succeeded``. The engine's own time on the same candles, measured in this process,
   is the baseline: overhead = end to end - engine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from server import Gunicorn

from engine.backtest import run_backtest
from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
YEAR_END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
YEAR_START = YEAR_END - 365 * DAY_MS
SPEC = {"template": "sma_crossover", "params": {"fast": 20, "slow": 50}}
PASSWORD = "bench-password-long"  # noqa: S105 - a throwaway account in a scratch database


def call(port: int, method: str, path: str, body: Any = None, token: str = "") -> Any:
    """One JSON request on loopback; returns (status, parsed body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def load_year(env: dict[str, str]) -> None:
    """A year of BTC-USD 1m candles (and derived timeframes) in the scratch database."""
    code = (
        "from api.app import create_app\n"
        "from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider\n"
        "from models.db import session\n"
        "from models.market.instruments import get_instrument\n"
        "from models.market.data import load_history\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    spec = SYNTHETIC_INSTRUMENTS[0]\n"
        "    inst = get_instrument(spec.symbol)\n"
        f"    step = 30 * {DAY_MS}\n"
        f"    for start in range({YEAR_START}, {YEAR_END}, step):\n"
        f"        end = min(start + step, {YEAR_END})\n"
        "        load_history(SyntheticProvider(), inst, spec, start, end)\n"
        "        session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=harness.ROOT, env=env, check=True)


def engine_baseline(repeats: int = 15) -> float:
    """Median ms of the engine alone on the same 8,760 1h candles the job reads."""
    minutes = SyntheticProvider().candles(SYNTHETIC_INSTRUMENTS[0], YEAR_START, YEAR_END)
    from engine.candles import resample  # noqa: PLC0415 - only this measurement needs it

    hours: Candles = resample(minutes, HOUR_MS)
    config = {"initial_capital": 10_000.0, "fee": 0.001, "slippage_bps": 5.0}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_backtest(hours, SPEC, {}, config)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def one_run(port: int, token: str) -> dict[str, float]:
    """POST, then poll until succeeded; wall ms and the server's own timings."""
    body = {"symbol": "BTC-USD", "timeframe": "1h", "strategy": SPEC}
    body |= {"start": YEAR_START, "end": YEAR_END}
    started = time.perf_counter()
    status, created = call(port, "POST", "/api/v1/backtests", body, token)
    if status != 202:
        raise harness.BenchError(f"POST answered {status}: {created}")
    posted = time.perf_counter()
    while True:
        status, state = call(port, "GET", f"/api/v1/backtests/{created['id']}", token=token)
        if state["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.002)
    done = time.perf_counter()
    if state["status"] != "succeeded":
        raise harness.BenchError(f"backtest ended {state['status']}: {state['error']}")
    return {
        "wall_ms": (done - started) * 1000,
        "post_ms": (posted - started) * 1000,
        "queued_ms": state["queued_ms"],
        "run_ms": state["run_ms"],
        "bars": state["bars"],
    }


def end_to_end(runs: int, fork: bool) -> dict[str, Any]:
    """Everything in a scratch database: the figures of ``runs`` backtests."""
    services = harness.Services.from_env(os.environ)
    services.check()
    with services.scratch():
        env = services.app_env(RATE_LIMIT_USER="100000/minute", BACKTEST_QUOTA_USER="100")
        harness.prepare_database(env, seed_days=0)
        harness.note("loading a year of BTC-USD 1m history")
        load_year(env)
        harness.flask_cli(
            ["users", "create", "b@bench.local", "bencher", "--password", PASSWORD], env
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers.main", "--queues", "backtests"]
            + (["--fork"] if fork else []),
            cwd=harness.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with Gunicorn(env) as server:
                status, tokens = call(
                    server.port,
                    "POST",
                    "/api/v1/auth/login",
                    {"login": "bencher", "password": PASSWORD},
                )
                if status != 200:
                    raise harness.BenchError(f"login answered {status}: {tokens}")
                one_run(server.port, tokens["access_token"])  # warm up: imports, pools
                samples = [one_run(server.port, tokens["access_token"]) for _ in range(runs)]
        finally:
            worker.terminate()
            worker.wait(30)
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> int:
    """Run both parts and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--engine-bars", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fork", action="store_true", help="the worker forks a work horse per job")
    args = parser.parse_args()

    harness.note("engine vs numpy reference (scripts/bench/backtest_engine.py)")
    subprocess.run(
        [sys.executable, "scripts/bench/backtest_engine.py", "--bars", str(args.engine_bars)],
        cwd=harness.ROOT,
        check=True,
    )
    engine_ms = engine_baseline()
    e2e = end_to_end(args.runs, args.fork)
    report = {
        "machine": harness.machine(),
        "engine_ms": engine_ms,
        **{f"e2e_{k}": v for k, v in e2e.items()},
        "overhead_ms": e2e["wall_ms"] - engine_ms,
        "worker": "forking (a work horse per job)" if args.fork else "in-process",
    }

    def render(r: dict[str, Any]) -> str:
        return "\n".join(
            [
                "",
                f"One-year 1h backtest ({r['e2e_bars']:.0f} bars), median of {args.runs} runs, "
                f"one {r['worker']} worker:",
                f"  engine alone            {r['engine_ms']:8.1f} ms",
                f"  POST -> succeeded       {r['e2e_wall_ms']:8.1f} ms  "
                f"(POST {r['e2e_post_ms']:.1f} ms, queued {r['e2e_queued_ms']:.0f} ms, "
                f"running {r['e2e_run_ms']:.0f} ms by the server's clock)",
                f"  overhead beyond engine  {r['overhead_ms']:8.1f} ms  (target < 150 ms)",
            ]
        )

    harness.emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    harness.run(main)
