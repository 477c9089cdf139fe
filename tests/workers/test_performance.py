"""The live performance job: daily rollups and snapshots on real Postgres, incrementally."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy import func, select, update

from engine.metrics import DAY_MS
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models import binary
from models import db as database
from models.bots.bots import create_bot
from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade
from models.market.instruments import sync_instruments
from models.performance.rollups import load_rollups, roll_up
from models.performance.snapshots import snapshot_body, snapshot_of, snapshots_for
from models.performance.tables import PERIODS, RunDailyEquity, RunPerformance, RunRollupState
from settings import Settings
from tests.engine.test_performance import Run, assert_matches, reference, rollup
from tests.helpers import REDIS_URL, create_database, drop_database
from workers.performance import refresh_performance
from workers.schedule import PERIODIC, periodic_jobs

HOUR = 3_600_000
DAY0 = 20_400  # 2025-11-07
BOT = {
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 0.0,
}


class Runs:
    """Live runs with hand-written equity and trades, as ticks would have written them."""

    def __init__(self, db: Any, owner_id: uuid.UUID) -> None:
        self.db = db
        self.owner_id = owner_id

    def new(self) -> uuid.UUID:
        bot = create_bot(self.owner_id, {**BOT, "name": f"b{uuid.uuid4().hex[:8]}"})
        run = BotRun(
            bot_id=bot.id,
            owner_id=self.owner_id,
            status="running",
            started_at=datetime.fromtimestamp(DAY0 * 86_400, UTC),
            initial_capital=10_000.0,
            broker_state={"cash": 10_000.0, "units": 0.0},
        )
        self.db.add(run)
        self.db.flush()
        return run.id

    def tick(self, run_id: uuid.UUID, ts: np.ndarray, equity: np.ndarray, trades: Any = ()) -> None:
        self.db.add_all(
            BotEquity(run_id=run_id, ts=int(t), equity=float(e))
            for t, e in zip(ts, equity, strict=True)
        )
        for n, (exit_ts, pnl) in enumerate(trades):
            self.db.add(
                BotTrade(
                    run_id=run_id,
                    client_order_id=f"{run_id}:{exit_ts}:{n}",
                    side="long",
                    units=1.0,
                    entry_ts=int(exit_ts) - HOUR,
                    entry_price=100.0,
                    exit_ts=int(exit_ts),
                    exit_price=100.0 + pnl,
                    fees=0.0,
                    pnl=float(pnl),
                    pnl_pct=pnl / 100.0,
                    exit_reason="signal",
                )
            )
        self.db.execute(
            update(BotRun).where(BotRun.id == run_id).values(last_candle_ts=int(ts[-1]))
        )
        self.db.commit()


@pytest.fixture
def runs(db: Any, make_user: Callable[..., Any]) -> Runs:
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    user = make_user()
    db.commit()
    return Runs(db, user.id)


def series(seed: int, hours: int, start_hour: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = DAY0 * DAY_MS + (start_hour + np.arange(hours, dtype=np.int64)) * HOUR
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.008, hours)))
    return ts, equity


def day_rows(db: Any, run_id: uuid.UUID) -> list[RunDailyEquity]:
    return list(
        db.scalars(
            select(RunDailyEquity)
            .where(RunDailyEquity.run_id == run_id)
            .order_by(RunDailyEquity.day)
            .execution_options(populate_existing=True)
        )
    )


def snapshot(db: Any, run_id: uuid.UUID, period: str) -> dict[str, Any]:
    row = db.get(RunPerformance, (run_id, period), populate_existing=True)
    return snapshot_body(row)


def test_rollups_and_snapshots_equal_the_per_bar_metrics(db: Any, runs: Runs) -> None:
    run_id = runs.new()
    ts, equity = series(1, 5 * 24 + 7, start_hour=3)
    equity[30] = equity.max() * 1.04  # a new high in the middle of day 1
    equity[60:80] *= np.linspace(1.0, 0.9, 20)  # a losing streak across a day boundary
    trades = [(ts[10], 25.0), (ts[40], -12.5), (ts[41], 8.0), (ts[100], -3.0), (ts[-1], 4.0)]
    runs.tick(run_id, ts, equity, trades)

    counts = refresh_performance()
    assert counts == {"runs_rolled": 1, "days_written": 6, "runs_recomputed": 1}

    exits = np.asarray([t for t, _ in trades], dtype=np.int64)
    pnl = np.asarray([p for _, p in trades])
    run: Run = (ts, equity, 10_000.0, HOUR, exits, pnl)
    want = rollup([run])
    rows = day_rows(db, run_id)
    assert [r.day for r in rows] == want.day.tolist()
    _, bars_per_day = np.unique(ts // DAY_MS, return_counts=True)
    assert [r.bars for r in rows] == bars_per_day.tolist()
    assert [r.trades for r in rows] == want.trades.tolist()
    # Postgres and numpy do the same float operations: exact, not approximately equal.
    assert [r.max_drawdown for r in rows] == want.max_drawdown.tolist()
    assert [(r.close, r.high, r.low) for r in rows] == list(
        zip(want.close.tolist(), want.high.tolist(), want.low.tolist(), strict=True)
    )
    assert rows[0].open == equity[0]
    state = db.get(RunRollupState, run_id, populate_existing=True)
    assert state.rolled_ts == int(ts[-1])

    for period, days in (("all", None), ("7d", 7), ("30d", 30), ("90d", 90)):
        body = snapshot(db, run_id, period)
        assert body["metrics_version"] == "1" and body["period"] == period
        assert_matches(body, reference(run, days))
        assert body["as_of_ts"] == int(ts[-1])
    assert snapshot(db, run_id, "all")["psr"] is not None


def test_only_runs_with_new_equity_are_recomputed_and_a_partial_day_is_redone(
    db: Any, runs: Runs
) -> None:
    quiet, busy = runs.new(), runs.new()
    ts_q, eq_q = series(2, 50)
    runs.tick(quiet, ts_q, eq_q)
    ts, equity = series(3, 3 * 24 + 12)  # ends at noon of day 3
    equity[-12] = equity.max() * 1.05  # day 3's peak in its first half...
    runs.tick(busy, ts, equity)
    assert refresh_performance()["runs_recomputed"] == 2
    quiet_at = {p: db.get(RunPerformance, (quiet, p)).computed_at for p in PERIODS}
    busy_at = db.get(RunPerformance, (busy, "all")).computed_at

    # Nothing new: nothing to do, twice over.
    assert refresh_performance() == {"runs_rolled": 0, "days_written": 0, "runs_recomputed": 0}

    more_ts, more = series(4, 24, start_hour=3 * 24 + 12)
    more = more / more[0] * equity[-1] * 0.97
    runs.tick(busy, more_ts, more, [(more_ts[2], -30.0)])  # ...and its trough in the second
    counts = refresh_performance()
    assert counts == {"runs_rolled": 1, "days_written": 2, "runs_recomputed": 1}

    all_ts = np.concatenate([ts, more_ts])
    all_eq = np.concatenate([equity, more])
    want = rollup([(all_ts, all_eq, 10_000.0, HOUR, np.asarray([more_ts[2]]), np.asarray([-30.0]))])
    rows = day_rows(db, busy)
    assert [r.bars for r in rows] == [24, 24, 24, 24, 12]
    assert [r.max_drawdown for r in rows] == want.max_drawdown.tolist()
    assert rows[3].high == equity.max() and rows[3].trades == 1
    assert rows[3].low == min(equity[-12:].min(), more[:12].min())
    run: Run = (all_ts, all_eq, 10_000.0, HOUR, np.asarray([more_ts[2]]), np.asarray([-30.0]))
    for period, days in (("all", None), ("7d", 7)):
        assert_matches(snapshot(db, busy, period), reference(run, days))

    assert db.get(RunPerformance, (busy, "all"), populate_existing=True).computed_at > busy_at
    for p in PERIODS:
        row = db.get(RunPerformance, (quiet, p), populate_existing=True)
        assert row.computed_at == quiet_at[p]


def test_snapshots_for_snapshot_of_and_a_run_without_equity(db: Any, runs: Runs) -> None:
    done, fresh, idle = runs.new(), runs.new(), runs.new()
    runs.tick(done, *series(5, 30))
    refresh_performance()
    runs.tick(fresh, *series(6, 30))  # equity, but no pass since

    found = snapshots_for([done, fresh, idle])
    assert set(found) == {done} and set(found[done]) == set(PERIODS)
    row = snapshot_of(fresh, "7d")  # computed on the spot, through the same pass
    assert row is not None and row.as_of_ts == int(series(6, 30)[0][-1])
    assert set(snapshots_for([fresh])[fresh]) == set(PERIODS)
    assert snapshot_of(idle, "all") is None
    assert load_rollups([idle])[0] == []
    body = snapshot_body(row)
    assert set(body) >= {"period", "metrics_version", "as_of_ts", "psr", "computed_at"}


ROW_COLUMNS = (
    "day",
    "first_ts",
    "last_ts",
    "bars",
    "open",
    "close",
    "high",
    "low",
    "max_drawdown",
    "trades",
    "wins",
    "gross_profit",
    "gross_loss",
)


def row_values(db: Any, run_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return [tuple(getattr(r, c) for c in ROW_COLUMNS) for r in day_rows(db, run_id)]


def test_rolling_up_tick_by_tick_equals_one_cold_rollup(db: Any, runs: Runs) -> None:
    ts, equity = series(7, 4 * 24 + 9, start_hour=5)
    equity[20] = equity[:40].max() * 1.03  # a new high in day 0, after its first passes
    equity[21:45] = equity[20] * np.linspace(0.99, 0.9, 24)  # a fall across midnight
    equity[50] = equity.max() * 1.02  # and one in day 2, rolled up a bar at a time
    rng = np.random.default_rng(8)
    picks = np.sort(rng.choice(len(ts), 30, replace=True))  # several exits on one bar too
    pnl = np.round(rng.normal(0.0, 20.0, len(picks)), 6)
    pnl[::7] = 0.0  # neither a win nor a loss
    trades = [(int(ts[i]), float(p)) for i, p in zip(picks, pnl, strict=True)]

    def tick_range(run_id: uuid.UUID, a: int, b: int) -> None:
        inside = [(t, p) for t, p in trades if ts[a] <= t <= ts[b - 1]]
        runs.tick(run_id, ts[a:b], equity[a:b], inside)

    cold, each, chunks = runs.new(), runs.new(), runs.new()
    tick_range(cold, 0, len(ts))
    assert roll_up([cold]) == {cold: 5}
    for i in range(len(ts)):
        tick_range(each, i, i + 1)
        assert roll_up([each]) == {each: 1}  # only the day of the new mark
    cuts = np.unique(np.concatenate([[0, len(ts)], rng.integers(1, len(ts), 12)]))
    for a, b in itertools.pairwise(cuts.tolist()):
        tick_range(chunks, a, b)
        roll_up([chunks])
        assert roll_up([chunks]) == {}  # nothing new: nothing rolled
    db.commit()

    want = row_values(db, cold)
    assert sum(r[9] for r in want) == len(trades) and len(want) == 5
    # Exactly equal, floats included (drawdown, high, low, the trades' sums).
    assert row_values(db, each) == want
    assert row_values(db, chunks) == want
    exits = np.asarray([t for t, _ in trades], dtype=np.int64)
    reference_rows = rollup([(ts, equity, 10_000.0, HOUR, exits, pnl)])
    assert [r[8] for r in want] == reference_rows.max_drawdown.tolist()
    assert [r[6] for r in want] == reference_rows.high.tolist()


def test_a_day_row_gains_trades_without_new_marks(db: Any, runs: Runs) -> None:
    run_id = runs.new()
    ts, equity = series(9, 10)
    runs.tick(run_id, ts, equity, [(ts[2], 5.0)])
    refresh_performance()
    # A trade closing on a bar already rolled up cannot happen (exits are written with
    # their bar); one closing on a later bar of the same day, before its mark, is folded.
    runs.tick(run_id, ts[-1:] + HOUR, equity[-1:], [(int(ts[-1] + HOUR), -2.0)])
    assert refresh_performance() == {"runs_rolled": 1, "days_written": 1, "runs_recomputed": 1}
    (row,) = day_rows(db, run_id)
    assert (row.bars, row.trades, row.wins, row.gross_profit, row.gross_loss) == (
        11,
        2,
        1,
        5.0,
        2.0,
    )


def test_load_rollups_reads_what_the_orm_reads(db: Any, runs: Runs) -> None:
    ids = [runs.new() for _ in range(4)]
    for seed, run_id in enumerate(ids[:3]):
        ts, equity = series(10 + seed, 30 + 20 * seed, start_hour=seed * 7)
        runs.tick(run_id, ts, equity, [(ts[3], 1.5 * seed - 1.0), (ts[-1], 2.0)])
    refresh_performance()
    wanted = [ids[2], ids[3], ids[0], ids[1]]  # one without rows; not in id order
    order, rollups = load_rollups(wanted)
    assert order == [ids[2], ids[0], ids[1]]
    rows = [r for run_id in order for r in day_rows(db, run_id)]
    assert rollups.offsets.tolist() == [0, 4, 6]
    for name in ROW_COLUMNS:
        if name in ("open", "bars"):
            continue  # the engine does not read them
        column = getattr(rollups, name)
        assert column.tolist() == [getattr(r, name) for r in rows], name
        assert column.dtype in (np.int64, np.float64)
    assert rollups.initial_capital.tolist() == [10_000.0] * 3
    assert rollups.bar_ms.tolist() == [HOUR] * 3
    none, empty = load_rollups([])
    assert none == [] and empty.runs == 0 and len(empty.day) == 0


def test_binary_copy_in_and_packed_fetch_round_trip_and_refuse_nulls(db: Any) -> None:
    columns = (("id", "uuid"), ("n", "int2"), ("k", "int4"), ("ts", "int8"), ("x", "float8"))
    ids = [uuid.uuid4() for _ in range(3)]
    values = {
        "id": np.frombuffer(b"".join(i.bytes for i in ids), dtype="V16"),
        "n": np.asarray([1, -2, 3]),
        "k": np.asarray([7, 8, 2**31 - 1]),
        "ts": np.asarray([-(2**62), 0, 2**62]),
        "x": np.asarray([0.1, float("nan"), -float("inf")]),
    }
    db.execute(sa.text("CREATE TEMPORARY TABLE probe (id uuid, n int2, k int4, ts int8, x float8)"))
    binary.copy_in("probe", columns, values, 3)
    stored = db.execute(sa.text("SELECT id, n, k, ts, x FROM probe ORDER BY k")).all()
    assert [r.id for r in stored] == ids and [r.ts for r in stored] == values["ts"].tolist()
    assert [r.n for r in stored] == [1, -2, 3] and stored[0].x == 0.1
    assert np.isnan(stored[1].x) and stored[2].x == -float("inf")

    spec = [(name, pg_type, f"p.{name}") for name, pg_type in columns]
    rows = binary.fetch(spec, "probe p WHERE p.k > %s", [0])
    rows = rows[np.argsort(rows["k"])]
    assert [uuid.UUID(bytes=bytes(v)) for v in rows["id"]] == ids
    for name in ("n", "k", "ts"):
        assert rows[name].tolist() == values[name].tolist()
    assert rows["x"][0] == 0.1 and np.isnan(rows["x"][1]) and rows["x"][2] == -np.inf
    assert binary.fetch(spec, "probe p WHERE p.k < %s", [0]).shape == (0,)
    db.execute(sa.text("INSERT INTO probe VALUES (gen_random_uuid(), 1, NULL, 2, 3.0)"))
    with pytest.raises(ValueError, match="NULL"):
        binary.fetch(spec, "probe p")
    # A failing statement raises the server's error and leaves the connection usable.
    with pytest.raises(psycopg.errors.UndefinedTable):
        binary.fetch(spec, "no_such_table p")
    db.rollback()
    assert db.execute(sa.text("SELECT 1")).scalar() == 1


def test_the_job_is_scheduled_with_the_settings_interval() -> None:
    (spec,) = [p for p in PERIODIC if p.func == "workers.performance.refresh_performance"]
    assert spec.queue == "default" and spec.interval == 60
    jobs = periodic_jobs(Settings(performance_refresh_seconds=300))
    assert [p.interval for p in jobs if p.id == spec.id] == [300]
    assert [p.id for p in jobs] == [p.id for p in PERIODIC]


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def committed_url() -> Iterator[str]:
    """A migrated database of our own, so that two connections see each other's commits."""
    url = create_database("botyard_perf")
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": REDIS_URL or "", "BOTYARD_ENV": "test"}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi:app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield url
    database.session.remove()
    drop_database(url)


def test_two_passes_at_once_do_the_work_once(app: Flask, committed_url: str) -> None:
    database.configure(committed_url)  # the next test's db fixture binds its own again
    with app.app_context():
        sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
        user_id = database.session.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, username, username_key, password_hash)"
                " VALUES (gen_random_uuid(), 'p@example.com', 'p@example.com', 'perf_user',"
                " 'perf_user', 'x') RETURNING id"
            )
        ).scalar_one()
        runs = Runs(database.session, user_id)
        ids = [runs.new() for _ in range(5)]
        for seed, run_id in enumerate(ids):
            runs.tick(run_id, *series(seed, 80))
        database.session.remove()

    barrier = threading.Barrier(2)
    results: list[dict[str, int]] = []

    def one_pass() -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(refresh_performance())
            finally:
                database.end_session()

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # One pass did everything; the other waited for it on the lock and found nothing left.
    assert sorted(r["runs_recomputed"] for r in results) == [0, 5]
    assert sorted(r["runs_rolled"] for r in results) == [0, 5]
    with app.app_context():
        count = database.session.scalar(select(func.count()).select_from(RunPerformance))
        assert count == 5 * len(PERIODS)
        assert refresh_performance()["runs_rolled"] == 0
        database.session.remove()
