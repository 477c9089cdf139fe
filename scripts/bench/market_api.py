"""Benchmark: the cached candles endpoint against a bare JSON endpoint, same gunicorn, same run.

Measures requests/s and p50/p99 latency of
``GET /api/v1/market/instruments/BTC-USD/candles?timeframe=1m&start=..&end=..&limit=1000``
(a closed window of 1000 1m bars, warmed so every request is a cache hit) and of
``GET /health/live`` (small JSON, no I/O), alternately (bare, candles, bare, candles),
and prints the medians and the ratio candles/bare (target: at least 50%). The cache's
hit/miss counters (Redis hash ``mkt:stats``) are shown around each candles run.

    .venv/bin/python scripts/bench/market_api.py [--duration 10 --connections 32 --json]

Gunicorn runs scripts/gunicorn_conf.py; WEB_CONCURRENCY and WEB_THREADS from the
environment are passed through. Needs Postgres and Redis (see ``--help``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

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
    raise_nofile,
    run,
    table,
)
from loadgen import LoadGenerator, LoadSpec  # noqa: E402
from server import Gunicorn, http_get  # noqa: E402

from models.market.cache import CHUNK_BARS, STATS_KEY, chunk_key  # noqa: E402
from models.market.responses import SYNC_S  # noqa: E402

BARE_PATH = "/health/live"
MINUTE_MS = 60_000
TARGET_RATIO = 0.5


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (or processes)")
    parser.add_argument("--connections", type=int, default=32, help="open connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="bare+candles pairs (median)")
    parser.add_argument("--tool", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--symbol", default="BTC-USD")
    parser.add_argument("--bars", type=int, default=1000, help="bars per request (limit)")
    parser.add_argument(
        "--misalign-bars",
        type=int,
        default=0,
        help="shift the window off the cache's 1000-bar chunk grid (0: one chunk per request)",
    )
    parser.add_argument("--seed-days", type=int, default=2, help="days of 1m history to seed")
    parser.add_argument(
        "--seed-attempts", type=int, default=1, help="tries at migrate+seed, 30 s apart"
    )
    parser.add_argument("--cold-samples", type=int, default=10, help="uncached requests (info)")
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    parser.add_argument("--keep-server-log", action="store_true", help="keep gunicorn's log")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


def candle_window(now_ms: int, days: int, bars: int, misalign: int) -> tuple[int, int]:
    """A closed [start, end) of ``bars`` 1m bars inside the seeded history."""
    span = CHUNK_BARS * MINUTE_MS
    closed_end = now_ms // MINUTE_MS * MINUTE_MS - MINUTE_MS  # leave the forming minute out
    start = (closed_end - bars * MINUTE_MS) // span * span - misalign * MINUTE_MS
    if start < closed_end - days * 86_400_000 + MINUTE_MS:
        raise BenchError(f"{days} day(s) of history hold no closed window of {bars} bars")
    return start, start + bars * MINUTE_MS


def cache_stats(services: Services) -> dict[str, int]:
    """The closed-window response cache's hit/miss counters (the path this bench loads).

    Hits answered from a web process's memory reach Redis within ``SYNC_S`` (the process's
    sync thread adds them), so this waits that long, plus a margin, before reading.
    """
    time.sleep(2 * SYNC_S)
    raw = services.redis().hgetall(STATS_KEY)
    stats = {k.decode(): int(v) for k, v in raw.items()}
    lookups, misses = stats.get("response_lookups", 0), stats.get("response_misses", 0)
    return {
        "candle_hits": lookups - misses,
        "candle_misses": misses,
        "memory_hits": lookups - stats.get("response_local_misses", 0),
    }


def check_candles(port: int, path: str, bars: int) -> int:
    """One request must answer 200 with ``bars`` rows; returns the body size."""
    status, _, body = http_get(port, path)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
    rows = body.count(b"],[") + 1 if b'"rows":[[' in body else 0
    if rows != bars:
        raise BenchError(f"GET {path} returned {rows} rows, expected {bars}")
    return len(body)


def cold_path(
    services: Services, port: int, path: str, args: argparse.Namespace, window: tuple[int, int]
) -> dict[str, Any]:
    """Latency of uncached requests: the window's chunks are deleted before each one."""
    span = CHUNK_BARS * MINUTE_MS
    start, end = window
    keys = [chunk_key(args.symbol, "1m", i) for i in range(start // span, -(-end // span))]
    redis = services.redis()
    samples = []
    for _ in range(args.cold_samples):
        redis.delete(*keys)
        began = time.perf_counter()
        status, _, _ = http_get(port, path)
        samples.append((time.perf_counter() - began) * 1000)
        if status != 200:
            raise BenchError(f"uncached GET {path} answered {status}")
    return {
        "samples": len(samples),
        "chunks_per_request": len(keys),
        "p50_ms": round(percentile(samples, 50), 2),
        "max_ms": round(max(samples), 2) if samples else None,
    }


def measure(
    services: Services, server: Gunicorn, load: LoadGenerator, args: argparse.Namespace
) -> dict[str, Any]:
    """Everything but the set-up: window, cold path, warm-up, alternating load runs."""
    start, end = candle_window(
        int(time.time() * 1000), args.seed_days, args.bars, args.misalign_bars
    )
    path = (
        f"/api/v1/market/instruments/{args.symbol}/candles"
        f"?timeframe=1m&start={start}&end={end}&limit={args.bars}"
    )
    bare_status, _, bare_body = http_get(server.port, BARE_PATH)
    if bare_status != 200:
        raise BenchError(f"GET {BARE_PATH} answered {bare_status}")
    cold = cold_path(services, server.port, path, args, (start, end)) if args.cold_samples else None
    candles_bytes = check_candles(server.port, path, args.bars)  # warms the cache
    for _ in range(50):  # warm both endpoints' code paths on every worker
        http_get(server.port, BARE_PATH)
        http_get(server.port, path)
    stats_before = cache_stats(services)
    runs: list[dict[str, Any]] = []
    for round_no in range(1, args.rounds + 1):
        for name, target in (("bare", BARE_PATH), ("candles", path)):
            note(f"round {round_no}/{args.rounds}: {name} ({load.tool}, {args.duration:g}s)")
            before, cpu_before = cache_stats(services), server.cpu_seconds()
            own_before, wall_before = _children_cpu(), time.perf_counter()
            box_before = cpu_jiffies()
            result = load.run(server.port, target)
            wall = time.perf_counter() - wall_before
            box = machine_busy_pct(box_before, cpu_jiffies())
            cpu_after = server.cpu_seconds()
            after = cache_stats(services)
            workers_cpu = sum(cpu_after.get(p, 0.0) - c for p, c in cpu_before.items())
            runs.append(
                {
                    "round": round_no,
                    "endpoint": name,
                    **result.as_dict(),
                    "cache_hits": after["candle_hits"] - before["candle_hits"],
                    "cache_misses": after["candle_misses"] - before["candle_misses"],
                    "memory_hits": after["memory_hits"] - before["memory_hits"],
                    "server_cpu_pct": round(100 * workers_cpu / wall),
                    "loadgen_cpu_pct": round(100 * (_children_cpu() - own_before) / wall),
                    "machine_cpu_pct": round(box),
                }
            )
    stats_after = cache_stats(services)
    summary = {name: _median(runs, name) for name in ("bare", "candles")}
    ratio = summary["candles"]["rps"] / summary["bare"]["rps"] if summary["bare"]["rps"] else 0.0
    return {
        "window": {"start_ms": start, "end_ms": end, "bars": args.bars, "path": path},
        "body_bytes": {"bare": len(bare_body), "candles": candles_bytes},
        "cold": cold,
        "runs": runs,
        "median": summary,
        "ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
        "cache_stats": {"before": stats_before, "after": stats_after},
    }


def _children_cpu() -> float:
    """CPU seconds used by this process's finished children (wrk, the Python load processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _median(runs: list[dict[str, Any]], endpoint: str) -> dict[str, float]:
    mine = [r for r in runs if r["endpoint"] == endpoint]
    return {
        key: round(statistics.median(r[key] for r in mine), 3)
        for key in ("rps", "p50_ms", "p99_ms")
    }


def render(report: dict[str, Any]) -> str:
    """The report as readable tables."""
    m, cfg, spec = report["machine"], report["config"], report["load"]
    lines = [
        f"machine: {m['nproc']} cpu(s), Python {m['python']}, {m['platform']}, "
        f"load avg {m['loadavg_1m']} at start",
        "server:  gunicorn " + ", ".join(f"{k}={v}" for k, v in cfg["gunicorn"].items()),
        f"load:    {spec['tool']} ({spec['version']}), {spec['threads']} threads, "
        f"{spec['connections']} connections, {spec['duration']:g}s per run, "
        f"{spec['rounds']} round(s) alternating",
        f"candles: {report['window']['path']}",
        f"bodies:  bare {report['body_bytes']['bare']} B, "
        f"candles {report['body_bytes']['candles']:,} B",
        "",
    ]
    columns = {
        "round": "round",
        "endpoint": "endpoint",
        "req/s": "rps",
        "p50 ms": "p50_ms",
        "p99 ms": "p99_ms",
        "requests": "requests",
        "non-2xx": "non_2xx",
        "errors": "errors",
        "hits": "cache_hits",
        "in memory": "memory_hits",
        "misses": "cache_misses",
        "server CPU %": "server_cpu_pct",
        "loadgen CPU %": "loadgen_cpu_pct",
        "machine CPU %": "machine_cpu_pct",
    }
    rows = [[r[key] for key in columns.values()] for r in report["runs"]]
    lines.append(table("Runs", list(columns), rows))
    med = report["median"]
    lines.append(
        table(
            "Median of the rounds",
            ["endpoint", "req/s", "p50 ms", "p99 ms"],
            [[name, med[name]["rps"], med[name]["p50_ms"], med[name]["p99_ms"]] for name in med],
        )
    )
    verdict = "met" if report["target_met"] else "NOT met"
    lines.append(
        f"ratio candles/bare req/s: {report['ratio']:.1%} "
        f"(target >= {report['target_ratio']:.0%}: {verdict})"
    )
    before, after = report["cache_stats"]["before"], report["cache_stats"]["after"]
    lines.append(
        f"closed-window cache before load: hits={before['candle_hits']:,} "
        f"misses={before['candle_misses']:,}; "
        f"after: hits={after['candle_hits']:,} misses={after['candle_misses']:,} "
        f"(+{after['candle_hits'] - before['candle_hits']:,} hits, of which "
        f"+{after['memory_hits'] - before['memory_hits']:,} from a web process's memory; "
        f"+{after['candle_misses'] - before['candle_misses']:,} misses)"
    )
    problems = report["server_log"]
    lines.append(f"server log: {problems['count']} error/warning line(s)")
    lines.extend(f"  {line}" for line in problems["first"])
    cold = report["cold"]
    if cold:
        lines.append(
            f"uncached candles (info): {cold['samples']} requests, {cold['chunks_per_request']} "
            f"chunk(s) each from Postgres: p50 {cold['p50_ms']} ms, max {cold['max_ms']} ms"
        )
    return "\n".join(lines)


def main() -> int:
    """Set up, measure, report."""
    args = parse_args()
    host = machine()
    raise_nofile(4096)
    services = Services.from_env(os.environ, args.redis_db)
    services.check()
    spec = LoadSpec(args.threads, args.connections, args.duration)
    load = LoadGenerator(spec, args.tool, allow_install=not args.no_install)
    with services.scratch():
        env = services.app_env(RATE_LIMIT_ANONYMOUS="100000000/minute")
        prepare_database(env, args.seed_days, attempts=args.seed_attempts)
        with Gunicorn(env, keep_log=args.keep_server_log) as server:
            figures = measure(services, server, load, args)
            config = server.config
            figures["server_log"] = server.log_problems()
    report = {
        "benchmark": "market_api",
        "machine": host,
        "config": {"gunicorn": config, "redis_db": args.redis_db, "seed_days": args.seed_days},
        "load": {**vars(spec), "tool": load.tool, "version": load.version, "rounds": args.rounds},
        **figures,
    }
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    run(main)
