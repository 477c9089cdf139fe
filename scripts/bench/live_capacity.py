"""Live bots at scale: lag from a candle's close to the last of N paper bots ticked.

Usage: .venv/bin/python scripts/bench/live_capacity.py [--bots 1000,10000] [--workers 1,2]
       [--candles 15] [--json]

In a scratch database seeded with two days of 1m history for the synthetic instruments,
it creates the largest N of bots (1m timeframe, spread over the instruments, with a mix
of templates and parameters so that runs share little work) and starts them, with start
times spread over the previous day so their signal series differ in length (every run
is in its first epoch: up to 1,440 bars plus warm-up). Then, for each N and each worker
count, it runs the real processes: ``python -m workers.dispatch`` and 1 or 2
``python -m workers.main --queues bots`` (in-process jobs, as in the Procfile).

This process plays the feed: for each candle it calls the feed's own ``close_minute``
(store the 1m candle of every instrument, update the cache, publish the candle-closed
event) on the next simulated minute, then waits until every running run has ticked it.
The lag of a candle runs from just before ``close_minute`` to the ``ended_at`` of the
last tick job (RQ's clock, same machine). Two warm-up candles are not counted.

Baseline, measured in the same run: the engine alone advancing the same N runs by one
candle in this process (no database, no queue), so lag / engine shows what the rest of
the pipeline costs. CPU seconds per candle of the workers, the dispatcher and Postgres
(every ``postgres`` process on the machine) show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness

MINUTE = 60_000
WARMUP_CANDLES = 2
REDIS_DB = 12  # not the suite's 15 nor the other benchmarks' 14: they may run meanwhile
CLK = os.sysconf("SC_CLK_TCK")


def strategy_mix(rng: random.Random) -> dict[str, Any]:
    """One of five templates with random parameters, so most bots compute their own signals."""
    kind = rng.randrange(5)
    if kind == 0:
        fast = rng.randint(3, 15)
        return {
            "template": "sma_crossover",
            "params": {"fast": fast, "slow": fast + rng.randint(5, 45)},
        }
    if kind == 1:
        fast = rng.randint(3, 12)
        return {
            "template": "ema_crossover",
            "params": {"fast": fast, "slow": fast + rng.randint(8, 40)},
        }
    if kind == 2:
        return {"template": "rsi_mean_reversion", "params": {"period": rng.randint(7, 21)}}
    if kind == 3:
        return {"template": "bollinger_bands", "params": {"period": rng.randint(15, 30)}}
    return {
        "template": "donchian_breakout",
        "params": {"entry_period": rng.randint(10, 40), "exit_period": rng.randint(5, 10)},
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK


def postgres_pids() -> list[int]:
    """Every process named ``postgres`` (the server's backends and helpers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


class Bench:
    """The app, its feed and the bench owner, inside the scratch database."""

    def __init__(self, env: dict[str, str], services: harness.Services) -> None:
        os.environ.update(env)
        from api.app import create_app  # noqa: PLC0415 - after the environment points at the scratch db
        from workers.feed import Feed  # noqa: PLC0415

        self.app = create_app()
        self.ctx = self.app.app_context()
        self.ctx.push()
        from models.db import session  # noqa: PLC0415

        self.db = session
        settings = self.app.extensions["botyard.settings"]
        self.redis = services.redis()
        self.feed = Feed(self.redis, settings)
        self.minute = self.feed.newest_end()
        self.owner = self._owner()
        self.run_ids: list[uuid.UUID] = []

    def _owner(self) -> uuid.UUID:
        from models.identity.users import create_user  # noqa: PLC0415

        user = create_user("capacity@bench.local", "capacity", "bench-password-long", ("user",))
        self.db.commit()
        return user.id

    def add_runs(self, count: int, rng: random.Random) -> None:
        """Create ``count`` more running 1m bots, last ticked on the newest stored minute."""
        import sqlalchemy as sa  # noqa: PLC0415

        from engine.broker import BrokerConfig, BrokerState, validate_risk  # noqa: PLC0415
        from models.bots.bots import Bot  # noqa: PLC0415
        from models.bots.runs import BotRun  # noqa: PLC0415
        from models.market.tables import Instrument  # noqa: PLC0415

        instruments = list(self.db.scalars(sa.select(Instrument).order_by(Instrument.symbol)))
        last = self.minute - MINUTE
        bots, runs = [], []
        for n in range(len(self.run_ids), len(self.run_ids) + count):
            inst = instruments[n % len(instruments)]
            bot_id, run_id = uuid.uuid4(), uuid.uuid4()
            started = datetime.fromtimestamp((last - rng.randint(10, 1440) * MINUTE) / 1000, UTC)
            config = BrokerConfig(
                initial_capital=10_000.0,
                fee=0.001,
                slippage_bps=2.0,
                fractional=inst.fractional,
                size_precision=inst.size_precision,
            )
            bots.append(
                {
                    "id": bot_id,
                    "owner_id": self.owner,
                    "name": f"capacity-{n:05d}",
                    "instrument_id": inst.id,
                    "timeframe": "1m",
                    "strategy": strategy_mix(rng),
                    "risk": validate_risk({"stop_loss": 0.02}).as_dict(),
                    "initial_capital": 10_000.0,
                    "fee": 0.001,
                    "slippage_bps": 2.0,
                    "status": "running",
                }
            )
            runs.append(
                {
                    "id": run_id,
                    "bot_id": bot_id,
                    "owner_id": self.owner,
                    "status": "running",
                    "started_at": started,
                    "initial_capital": 10_000.0,
                    "broker_state": BrokerState.start(config).as_dict(),
                    "last_candle_ts": last,
                    "consecutive_failures": 0,
                }
            )
            self.run_ids.append(run_id)
        self.db.execute(sa.insert(Bot), bots)
        self.db.execute(sa.insert(BotRun), runs)
        self.db.commit()

    def ticked(self, candle_ts: int) -> int:
        """How many of the bench's runs have processed the candle."""
        import sqlalchemy as sa  # noqa: PLC0415

        from models.bots.runs import BotRun  # noqa: PLC0415

        count = self.db.scalar(
            sa.select(sa.func.count())
            .select_from(BotRun)
            .where(BotRun.owner_id == self.owner, BotRun.last_candle_ts >= candle_ts)
        )
        self.db.rollback()
        return int(count or 0)

    def last_job_end(self, candle_ts: int, timeout: float = 10) -> float:
        """``ended_at`` (epoch s) of the last tick job of the candle.

        The runs are counted as ticked once a job commits, a moment before RQ records the
        job as finished, so this waits for every job's ``ended_at``.
        """
        from rq.job import Job  # noqa: PLC0415

        ids = [
            k.decode().removeprefix("rq:job:")
            for k in self.redis.scan_iter(f"rq:job:tick-*-1m-{candle_ts}-*")
        ]
        deadline = time.time() + timeout
        while True:
            jobs = [j for j in Job.fetch_many(ids, connection=self.redis) if j is not None]
            pending = [j.id for j in jobs if j.get_status() != "finished" or j.ended_at is None]
            if not pending:
                return max(j.ended_at.replace(tzinfo=UTC).timestamp() for j in jobs)
            if time.time() > deadline:
                raise harness.BenchError(f"tick jobs did not finish: {pending[:3]}")
            time.sleep(0.01)

    def candle(self, timeout: float = 120) -> float:
        """Close the next minute and wait for every run; returns the lag in seconds."""
        minute = self.minute
        started = time.time()
        self.feed.close_minute(minute)
        self.minute += MINUTE
        while self.ticked(minute) < len(self.run_ids):
            if time.time() - started > timeout:
                raise harness.BenchError(f"runs still behind after {timeout:.0f} s")
            time.sleep(0.05)
        return self.last_job_end(minute) - started

    def engine_baseline(self) -> float:
        """Seconds for the engine alone to advance every run by the newest stored candle."""
        import sqlalchemy as sa  # noqa: PLC0415

        from engine.broker import BrokerState, validate_risk  # noqa: PLC0415
        from engine.candles import Candles  # noqa: PLC0415
        from engine.live import advance  # noqa: PLC0415
        from engine.strategies import validate_strategy  # noqa: PLC0415
        from models.bots.bots import Bot  # noqa: PLC0415
        from models.bots.runs import BotRun, broker_config  # noqa: PLC0415
        from models.bots.ticks import span_of  # noqa: PLC0415
        from models.market.candles import read_candles  # noqa: PLC0415

        settings = self.app.extensions["botyard.settings"]
        rows = self.db.execute(
            sa.select(BotRun, Bot)
            .join(Bot, Bot.id == BotRun.bot_id)
            .where(BotRun.owner_id == self.owner)
        ).all()
        target = self.minute - MINUTE
        candles = {
            iid: Candles.from_rows(
                read_candles(iid, "1m", target - 3 * 1440 * MINUTE, target + 1, 10**6)
            )
            for iid in {bot.instrument_id for _, bot in rows}
        }
        prepared = [(run, bot, broker_config(bot)) for run, bot in rows]
        started = time.perf_counter()
        for run, bot, config in prepared:
            strategy = validate_strategy(bot.strategy)
            series = candles[bot.instrument_id]
            advance(
                series,
                lambda a, f, b, s=strategy, c=series: s.signals(c.slice(a, b)).slice(f - a, b - a),
                span_of(run.started_at, "1m", strategy.warmup, settings.bot_epoch_bars),
                risk=validate_risk(bot.risk),
                config=config,
                state=BrokerState.start(config),
                last_done=target - MINUTE,
                target=target,
                fresh_bars=settings.bot_fresh_bars,
            )
        elapsed = time.perf_counter() - started
        self.db.rollback()
        return elapsed


def measure(bench: Bench, env: dict[str, str], workers: int, candles: int) -> dict[str, Any]:
    """Lag figures for the current runs with ``workers`` worker processes."""

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=harness.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    dispatcher = spawn("workers.dispatch")
    pool = [spawn("workers.main", "--queues", "bots") for _ in range(workers)]
    try:
        time.sleep(3)  # imports, the consumer group
        for _ in range(WARMUP_CANDLES):
            bench.candle()
        pg = postgres_pids()
        cpu_before = (
            cpu_seconds([p.pid for p in pool]),
            cpu_seconds([dispatcher.pid]),
            cpu_seconds(pg),
        )
        busy_before = harness.cpu_jiffies()
        lags = []
        for _ in range(candles):
            lags.append(bench.candle())
            time.sleep(0.3)
        busy = harness.machine_busy_pct(busy_before, harness.cpu_jiffies())
        cpu_after = (
            cpu_seconds([p.pid for p in pool]),
            cpu_seconds([dispatcher.pid]),
            cpu_seconds(pg),
        )
    finally:
        for proc in [dispatcher, *pool]:
            proc.terminate()
        for proc in [dispatcher, *pool]:
            proc.wait(30)
    per_candle = [
        (after - before) / candles for before, after in zip(cpu_before, cpu_after, strict=True)
    ]
    return {
        "bots": len(bench.run_ids),
        "workers": workers,
        "candles": candles,
        "lag_p50_s": harness.percentile(lags, 50),
        "lag_p99_s": harness.percentile(lags, 99),
        "lag_max_s": max(lags),
        "worker_cpu_s": per_candle[0],
        "dispatcher_cpu_s": per_candle[1],
        "postgres_cpu_s": per_candle[2],
        "machine_busy_pct": busy,
    }


def main() -> int:
    """Create the bots, then measure each (bots, workers) pair."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", default="1000,10000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--candles", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.bots.split(","))
    worker_counts = [int(n) for n in args.workers.split(",")]

    services = harness.Services.from_env(os.environ, redis_db=REDIS_DB)
    services.check()
    results = []
    with services.scratch():
        env = services.app_env()
        harness.prepare_database(env, seed_days=2)
        bench = Bench(env, services)
        rng = random.Random(7)  # noqa: S311 - reproducible bot mix, not secrets
        for size in sizes:
            harness.note(f"creating bots up to {size:,}")
            bench.add_runs(size - len(bench.run_ids), rng)
            baseline = bench.engine_baseline()
            for workers in worker_counts:
                harness.note(f"{size:,} bots, {workers} worker(s): {args.candles} candles")
                result = measure(bench, env, workers, args.candles)
                result["engine_only_s"] = baseline
                result["lag_vs_engine"] = result["lag_p50_s"] / baseline
                results.append(result)
                harness.note(f"  p50 {result['lag_p50_s']:.2f} s, p99 {result['lag_p99_s']:.2f} s")
        bench.ctx.pop()
    report = {"machine": harness.machine(), "results": results}

    def render(r: dict[str, Any]) -> str:
        rows = [
            [
                x["bots"],
                x["workers"],
                x["lag_p50_s"],
                x["lag_p99_s"],
                x["lag_max_s"],
                x["engine_only_s"],
                x["lag_vs_engine"],
                x["worker_cpu_s"],
                x["postgres_cpu_s"],
                x["dispatcher_cpu_s"],
                x["machine_busy_pct"],
            ]
            for x in r["results"]
        ]
        header = [
            "bots",
            "workers",
            "lag p50 s",
            "lag p99 s",
            "max s",
            "engine s",
            "p50/engine",
            "worker cpu s",
            "postgres cpu s",
            "dispatcher cpu s",
            "busy %",
        ]
        title = f"Candle close -> last bot ticked, {args.candles} candles each (CPU s per candle)"
        return harness.table(title, header, rows)

    harness.emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    harness.run(main)
