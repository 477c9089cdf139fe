"""Benchmark: publish-to-receive latency of the market SSE stream, N clients against one.

The server is the `streams` process (``python -m api.streams``, ``--target streams``, the
default) or gunicorn's `web` process (``--target web``). Opens N streams on
``GET /api/v1/market/stream?symbols=BTC-USD`` from one asyncio
process (raw streams, no thread per client), then XADDs quotes to the Redis stream
``mkt:stream:BTC-USD`` (fields ``type`` and ``data``, ``data`` carrying the publish
time) every ``--interval`` seconds for ``--duration`` seconds. Each client records
now - published for every event. The same is measured first for a single client, on
the same server in the same run, as the baseline; the target is p99 < 250 ms for 1000.

    .venv/bin/python scripts/bench/stream_fanout.py [--clients 1000 --duration 20 --json]
    .venv/bin/python scripts/bench/stream_fanout.py --target web --workers 2 --threads 700

With every stream open, one more connection is tried: at the process's cap
(``--max-streams-per-process`` equal to ``--clients``) it must get 503 at once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
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
from redis.asyncio import Redis as AsyncRedis  # noqa: E402
from server import Gunicorn, StreamsProcess  # noqa: E402
from sseclient import LeanClient, SSEClient, loop_lag, open_clients  # noqa: E402

from models.market.cache import stream_key  # noqa: E402

TARGET_P99_MS = 250.0
STREAM_MAXLEN = 10_000


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="streams in the main phase")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured publish")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds published unmeasured")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait after the last")
    parser.add_argument("--no-baseline", action="store_true", help="skip the 1-client phase")
    parser.add_argument("--target", choices=("streams", "web"), default="streams")
    parser.add_argument(
        "--client",
        choices=("lean", "parsing"),
        default="lean",
        help="lean: store what arrives and parse after the run; parsing: parse as it arrives",
    )
    parser.add_argument("--processes", type=int, default=1, help="streams: copies sharing the port")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="this client on the last CPU, the server's processes on the others (Linux)",
    )
    parser.add_argument("--workers", type=int, default=2, help="web: WEB_CONCURRENCY")
    parser.add_argument("--threads", type=int, default=700, help="web: WEB_THREADS per worker")
    parser.add_argument(
        "--max-streams-per-process",
        type=int,
        default=None,
        help="streams: SSE_MAX_STREAMS_PER_PROCESS (default: the setting's, 10,000); "
        "web: WEB_MAX_STREAMS (default 650)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--symbol", default="BTC-USD")
    parser.add_argument("--seed-days", type=int, default=0, help="history is not needed here")
    parser.add_argument(
        "--seed-attempts", type=int, default=1, help="tries at migrate+seed, 30 s apart"
    )
    parser.add_argument("--redis-db", type=int, default=DEFAULT_REDIS_DB)
    parser.add_argument("--keep-server-log", action="store_true", help="keep gunicorn's log")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser.parse_args()


class Publisher:
    """XADDs quote entries carrying their publish time and a sequence number."""

    def __init__(self, redis: AsyncRedis, symbol: str) -> None:
        self.redis, self.symbol, self.key = redis, symbol, stream_key(symbol)
        self.seq = 0

    async def publish(self, count: int, interval: float, measured: bool) -> dict[int, float]:
        """``count`` entries ``interval`` seconds apart; returns {seq: published time}."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent: dict[int, float] = {}
        for i in range(count):
            await asyncio.sleep(max(0.0, started + i * interval - loop.time()))
            self.seq += 1
            published = time.time()
            data = {
                "symbol": self.symbol,
                "price": 50_000 + self.seq % 100,
                "seq": self.seq,
                "published": published,
                "measured": measured,
            }
            fields = {"type": "quote", "data": json.dumps(data)}
            await self.redis.xadd(self.key, fields, maxlen=STREAM_MAXLEN, approximate=True)
            sent[self.seq] = published
        return sent


def try_one_more(port: int, path: str) -> str:
    """One more stream with every client's open: its status and how long the answer took."""
    started = time.perf_counter()
    try:
        status = _status_of(port, path)
    except OSError as exc:
        return f"{type(exc).__name__} after {time.perf_counter() - started:.1f}s"
    return f"{status} in {(time.perf_counter() - started) * 1000:.0f} ms"


def _status_of(port: int, path: str) -> int:
    """The status of a GET, without reading a body that may never end (a stream)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def latency_figures(clients: list[SSEClient], sent: dict[int, float]) -> dict[str, Any]:
    """Pooled latencies of measured messages, plus per-message slowest-client latency."""
    latencies: list[float] = []
    slowest: dict[int, float] = {}
    duplicates = 0
    for client in clients:
        seen: set[int] = set()
        for received, kind, data in client.events:
            if kind != "quote":
                continue
            seq = json.loads(data).get("seq")
            if seq not in sent:
                continue
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            ms = (received - sent[seq]) * 1000
            latencies.append(ms)
            slowest[seq] = max(slowest.get(seq, 0.0), ms)
    open_clients_ = sum(c.status in ("open", "closed") for c in clients)
    expected = open_clients_ * len(sent)
    return {
        "messages_published": len(sent),
        "expected": expected,
        "received": len(latencies),
        "missing": expected - len(latencies),
        "duplicates": duplicates,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2) if latencies else None,
        "slowest_client_p50_ms": round(percentile(list(slowest.values()), 50), 2),
    }


async def phase(
    server: Gunicorn, publisher: Publisher, count: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Open ``count`` streams, publish, collect, close; the figures of one phase."""
    path = f"/api/v1/market/stream?symbols={args.symbol}"
    note(f"phase {count} client(s): connecting")
    started, connect_cpu = time.perf_counter(), server.cpu_seconds()
    clients, tasks = await open_clients(
        server.port,
        path,
        count,
        args.connect_concurrency,
        args.connect_timeout,
        lean=args.client == "lean",
    )
    connect_s = time.perf_counter() - started
    connect_cpu_s = sum(server.cpu_seconds().values()) - sum(connect_cpu.values())
    opened = sum(c.status == "open" for c in clients)
    note(f"phase {count} client(s): {opened} open in {connect_s:.1f}s; one more, then publishing")
    one_more = await asyncio.to_thread(try_one_more, server.port, path)
    # The client stands for 10,000 browsers: its own collector's pauses over the events it
    # keeps are not the server's latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    await asyncio.sleep(0.5)
    await publisher.publish(max(1, round(args.warmup / args.interval)), args.interval, False)
    lag: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(loop_lag(lag, stop))
    cpu_before, own_before, wall_before = server.cpu_seconds(), time.process_time(), time.time()
    box_before = cpu_jiffies()
    sent = await publisher.publish(round(args.duration / args.interval), args.interval, True)
    await asyncio.sleep(args.drain)
    wall = time.time() - wall_before
    cpu_after, own = server.cpu_seconds(), time.process_time() - own_before
    box = machine_busy_pct(box_before, cpu_jiffies())
    stop.set()
    await monitor
    gc.enable()
    gc.unfreeze()
    ended_early = sum(c.status == "closed" for c in clients)
    for client in clients:
        client.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        if isinstance(client, LeanClient):
            client.finish()
    # A stream notices its client left only when it next writes: one more entry ends them all.
    await publisher.publish(1, 0.0, False)
    worker_cpu = [
        round(100 * (cpu_after.get(pid, 0.0) - used) / wall, 1) for pid, used in cpu_before.items()
    ]
    errors = sorted({c.error for c in clients if c.error and c.status != "closed"})
    refusals: dict[str, int] = {}
    for client in clients:
        for status, times in client.statuses.items():
            refusals[str(status)] = refusals.get(str(status), 0) + times
    return {
        "clients": count,
        "open": opened,
        "refused": sum(c.status == "refused" for c in clients),
        "failed": sum(c.status == "failed" for c in clients),
        "connect_attempts": sum(c.attempts for c in clients),
        "connect_refusals": refusals,
        "connect_s": round(connect_s, 2),
        "connect_server_cpu_ms_per_stream": round(1000 * connect_cpu_s / max(1, count), 2),
        "one_more": one_more,
        "ended_early": ended_early,
        **latency_figures(clients, sent),
        "server_worker_cpu_pct": worker_cpu,
        "bench_process_cpu_pct": round(100 * own / wall, 1),
        "machine_cpu_pct": box,
        "client_loop_lag_p99_ms": round(percentile(lag, 99), 2),
        "client_loop_lag_max_ms": round(max(lag), 2) if lag else None,
        "errors": errors[:5],
    }


async def measure(server: Gunicorn, services: Services, args: argparse.Namespace) -> dict[str, Any]:
    """The baseline phase (1 client), then the N-client phase, on one server."""
    redis = AsyncRedis.from_url(services.redis_url)
    try:
        publisher = Publisher(redis, args.symbol)
        phases = []
        if not args.no_baseline:
            phases.append(await phase(server, publisher, 1, args))
        phases.append(await phase(server, publisher, args.clients, args))
    finally:
        await redis.aclose()
    return {"phases": phases}


def render(report: dict[str, Any]) -> str:
    """The report as readable tables."""
    m, cfg = report["machine"], report["config"]
    lines = [
        f"machine: {m['nproc']} cpu(s), Python {m['python']}, {m['platform']}, "
        f"load avg {m['loadavg_1m']} at start",
        f"server:  {cfg['target']}: " + ", ".join(f"{k}={v}" for k, v in cfg["server"].items()),
        f"client:  {cfg['client']}" + (", pinned apart from the server" if cfg["pinned"] else ""),
        f"publish: XADD {cfg['stream']} every {cfg['interval_s']}s for {cfg['duration_s']}s "
        f"(+{cfg['warmup_s']}s warm-up, {cfg['drain_s']}s drain), maxlen ~{STREAM_MAXLEN}",
        "",
    ]
    keys = {
        "clients": "clients",
        "open": "open",
        "refused": "refused",
        "connect tries": "connect_attempts",
        "connect refusals (status x n)": "connect_refusals",
        "connect s": "connect_s",
        "server CPU ms per connect": "connect_server_cpu_ms_per_stream",
        "one more stream": "one_more",
        "streams ended early": "ended_early",
        "messages": "messages_published",
        "expected": "expected",
        "received": "received",
        "missing": "missing",
        "duplicates": "duplicates",
        "p50 ms": "p50_ms",
        "p95 ms": "p95_ms",
        "p99 ms": "p99_ms",
        "max ms": "max_ms",
        "slowest client/msg p50 ms": "slowest_client_p50_ms",
        "server worker CPU %": "server_worker_cpu_pct",
        "bench process CPU %": "bench_process_cpu_pct",
        "machine CPU % (200 = 2 cpus)": "machine_cpu_pct",
        "client loop lag p99 ms": "client_loop_lag_p99_ms",
        "client loop lag max ms": "client_loop_lag_max_ms",
    }
    phases = report["phases"]
    header = ["", *(f"{p['clients']} client(s)" for p in phases)]
    rows = [[label, *(_show(p[key]) for p in phases)] for label, key in keys.items()]
    lines.append(table("Publish-to-receive latency", header, rows))
    for p in phases:
        if p["errors"]:
            lines.append(f"errors with {p['clients']} client(s): {'; '.join(p['errors'])}")
    if report.get("p99_ratio") is not None:
        lines.append(f"p99({phases[-1]['clients']}) / p99(1): {report['p99_ratio']:.1f}x")
    problems = report["server_log"]
    lines.append(f"server log: {problems['count']} error/warning line(s)")
    lines.extend(f"  {line}" for line in problems["first"])
    verdict = "met" if report["target_met"] else "NOT met"
    lines.append(
        f"target p99 < {TARGET_P99_MS:.0f} ms with {phases[-1]['clients']} clients: "
        f"{phases[-1]['p99_ms']} ms ({verdict})"
    )
    return "\n".join(lines)


def _show(value: object) -> object:
    if isinstance(value, dict):
        return " ".join(f"{k}x{v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "-" if value is None else value


def pin(server: Gunicorn) -> None:
    """Keep the client and the server off each other's CPU.

    On the 2-core host the 10,000 clients are one process beside the server; without
    this the scheduler often runs a woken client on the core of the server that woke it,
    and a burst of writes takes turns with its own readers. In production the clients
    are elsewhere.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise BenchError("--pin needs at least 2 CPUs")
    os.sched_setaffinity(0, {cpus[-1]})
    for pid in server.worker_pids():
        for task in Path(f"/proc/{pid}/task").iterdir():  # every thread of it
            os.sched_setaffinity(int(task.name), set(cpus[:-1]))
    note(f"client pinned to CPU {cpus[-1]}, server to CPU(s) {cpus[:-1]}")


def server_for(args: argparse.Namespace, env: dict[str, str]) -> Gunicorn:
    """The server under test, with its stream cap."""
    cap = args.max_streams_per_process
    if args.target == "web":
        return Gunicorn(
            {
                **env,
                "WEB_CONCURRENCY": str(args.workers),
                "WEB_THREADS": str(args.threads),
                "WEB_MAX_STREAMS": str(cap or 650),
            },
            keep_log=args.keep_server_log,
        )
    if cap is not None:
        env = {**env, "SSE_MAX_STREAMS_PER_PROCESS": str(cap)}
    return StreamsProcess(env, processes=args.processes, keep_log=args.keep_server_log)


def main() -> int:
    """Set up, measure, report."""
    args = parse_args()
    host = machine()
    limit = raise_nofile(args.clients + 4096)
    if limit < args.clients + 256:
        raise BenchError(f"open-files limit {limit} is too low for {args.clients} clients")
    services = Services.from_env(os.environ, args.redis_db)
    services.check()
    with services.scratch():
        env = services.app_env(
            SSE_MAX_STREAMS_PER_USER=str(max(5000, args.clients + 10)),
            RATE_LIMIT_ANONYMOUS="1000000/minute",
        )
        prepare_database(env, args.seed_days, attempts=args.seed_attempts)
        with server_for(args, env) as server:
            if args.pin:
                pin(server)
            figures = asyncio.run(measure(server, services, args))
            config = server.config
            figures["server_log"] = server.log_problems()
    phases = figures["phases"]
    base_p99 = phases[0]["p99_ms"] if len(phases) > 1 else None
    report = {
        "benchmark": "stream_fanout",
        "machine": host,
        "config": {
            "target": args.target,
            "client": args.client,
            "pinned": args.pin,
            "server": config,
            "stream": stream_key(args.symbol),
            "interval_s": args.interval,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "drain_s": args.drain,
            "nofile_soft_limit": limit,
        },
        **figures,
        "p99_ratio": round(phases[-1]["p99_ms"] / base_p99, 2) if base_p99 else None,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": phases[-1]["p99_ms"] < TARGET_P99_MS and phases[-1]["missing"] == 0,
    }
    emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    run(main)
