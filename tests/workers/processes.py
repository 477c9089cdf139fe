"""Harness for tests against real processes: a database of their own, seeded runs, subprocesses.

The rollback-per-test ``db`` fixture can't be used: a worker in another process must see
the data. :class:`World` owns a migrated database with BTC-USD 1h candles and starts runs
in it; :class:`Procs` starts ``python -m ...`` processes in sessions of their own and kills
each whole process group (RQ's scheduler is a forked child of the worker) when the test
ends, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy.pool import NullPool

from api.app import create_app
from models import db as database
from models.bots.bots import create_bot
from models.bots.runs import current_run, start_bot
from models.identity.rbac import sync_roles
from models.identity.users import create_user
from models.market.instruments import forget_instrument_refs
from tests.helpers import (
    PASSWORD,
    REDIS_URL,
    create_database,
    drop_database,
    load_btc_history,
    make_settings,
)
from workers.ticks import tick_bots

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3_600_000
DAY = 24 * HOUR
# A month after the span other tests tick, so this process's shared tick caches never mix.
END = 1_769_904_000_000  # 2026-02-01T00:00:00Z
NEWEST = END - HOUR  # the newest stored 1h candle
SPAN_START = END - 4 * DAY
STARTED_AT = datetime.fromtimestamp(SPAN_START / 1000, UTC)
BOT = {
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 0.0,
}
# Every candle a run processes gets one equity point: from its first bar through NEWEST.
POINTS_AT_NEWEST = (NEWEST - SPAN_START) // HOUR + 1

# What World.snapshot reports for each run.
SNAPSHOT = (
    "last_candle_ts",
    "failures",
    "error",
    "equity",  # rows in bot_equity
    "equity_ts",  # distinct ts among them
    "trades",
    "ticks",  # `tick` log entries
    "ticks_at_newest",  # `tick` log entries for the candle NEWEST
    "trade_logs",  # `trade_closed` log entries
    "failure_logs",  # `tick_failed` and `run_errored` log entries
)

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, logs: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(0.05)


@dataclass
class World:
    """A migrated database of the module's own, its app, and a plain engine to inspect it."""

    app: Flask
    url: str
    engine: sa.Engine
    owner_id: uuid.UUID

    @property
    def env(self) -> dict[str, str]:
        """The environment of a worker or scheduler process using this database."""
        return {
            **os.environ,
            "DATABASE_URL": self.url,
            "REDIS_URL": REDIS_URL or "",
            "BOTYARD_ENV": "test",
            "LOG_LEVEL": "INFO",
            "LOG_JSON": "0",
        }

    def start_runs(self, count: int, ticked_to: int | None) -> list[str]:
        """Start ``count`` bots at ``SPAN_START``; tick them to ``ticked_to``, trading every bar."""
        with self.app.app_context():
            run_ids = []
            for _ in range(count):
                bot = create_bot(self.owner_id, {**BOT, "name": f"bot-{uuid.uuid4().hex[:8]}"})
                start_bot(self.owner_id, bot.id, limit=1000, now=STARTED_AT)
                run = current_run(bot)
                assert run is not None
                run_ids.append(str(run.id))
            database.session.commit()
            if ticked_to is not None:
                # fresh_bars covering the whole span: as if every candle had been ticked live.
                outcome = tick_bots(run_ids, ticked_to, fresh_bars=10**6)
                assert outcome["ticked"] == run_ids, outcome
            database.session.remove()
        return sorted(run_ids)

    def stop_running_runs(self) -> None:
        """Stop every run (and its bot) still running or paused in this database."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE bot_runs SET status = 'stopped', stopped_at = now() "
                    "WHERE status IN ('running', 'paused')"
                )
            )
            conn.execute(
                sa.text("UPDATE bots SET status = 'stopped' WHERE status IN ('running', 'paused')")
            )

    def snapshot(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """What each run has committed: its row's tick fields and its rows in the other tables."""
        query = sa.text(
            """
            SELECT r.id::text, r.last_candle_ts, r.consecutive_failures, r.error,
              (SELECT count(*) FROM bot_equity e WHERE e.run_id = r.id),
              (SELECT count(DISTINCT e.ts) FROM bot_equity e WHERE e.run_id = r.id),
              (SELECT count(*) FROM bot_trades t WHERE t.run_id = r.id),
              (SELECT count(*) FROM execution_logs l WHERE l.run_id = r.id AND l.event = 'tick'),
              (SELECT count(*) FROM execution_logs l
                WHERE l.run_id = r.id AND l.event = 'tick' AND l.candle_ts = :newest),
              (SELECT count(*) FROM execution_logs l
                WHERE l.run_id = r.id AND l.event = 'trade_closed'),
              (SELECT count(*) FROM execution_logs l
                WHERE l.run_id = r.id AND l.event IN ('tick_failed', 'run_errored'))
            FROM bot_runs r WHERE r.id = ANY(CAST(:ids AS uuid[])) ORDER BY r.id
            """
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query, {"ids": run_ids, "newest": NEWEST}).all()
        return {row[0]: dict(zip(SNAPSHOT, row[1:], strict=True)) for row in rows}

    def assert_caught_up_once(self, run_ids: list[str], before: dict[str, dict[str, Any]]) -> None:
        """Every run is at NEWEST with one equity point per candle, nothing doubled, no failure."""
        after = self.snapshot(run_ids)
        assert sorted(after) == run_ids
        for run_id, now in after.items():
            was = before[run_id]
            assert now["last_candle_ts"] == NEWEST, (run_id, now)
            assert (now["failures"], now["error"], now["failure_logs"]) == (0, None, 0), now
            assert now["equity"] == now["equity_ts"] == POINTS_AT_NEWEST, now
            # Exactly one more tick entry, at NEWEST; each trade row has exactly one log entry.
            assert (now["ticks"], now["ticks_at_newest"]) == (was["ticks"] + 1, 1), now
            assert now["trades"] == now["trade_logs"] >= was["trades"], (was, now)

    @contextmanager
    def blocker(self) -> Iterator[sa.Connection]:
        """An open transaction holding a SHARE lock on ``bot_equity`` until the block exits.

        A tick job locks its runs and computes as usual, then waits inside its bulk insert
        of equity points. Leaving the block rolls the transaction back.
        """
        with self.engine.connect() as conn:
            conn.execute(sa.text("LOCK TABLE bot_equity IN SHARE MODE"))
            try:
                yield conn
            finally:
                conn.rollback()

    def waiting_insert(self) -> int | None:
        """The backend pid of a session waiting on a lock to insert equity points, if any."""
        query = sa.text(
            """
            SELECT pid FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()
              AND wait_event_type = 'Lock' AND query ILIKE '%bot_equity%'
            """
        )
        with self.engine.connect() as conn:
            pids = conn.scalars(query).all()
        assert len(pids) <= 1, pids
        return pids[0] if pids else None

    def backend_alive(self, pid: int) -> bool:
        """True while a server process with this pid still serves this database."""
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        with self.engine.connect() as conn:
            return bool(conn.scalar(query, {"pid": pid}))

    def terminate(self, pid: int) -> bool:
        """``pg_terminate_backend``: the server closes that session's connection."""
        with self.engine.connect() as conn:
            return bool(conn.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}))


@contextmanager
def world_database() -> Iterator[World]:
    """Create, migrate and seed a database; drop it afterwards, restoring the process's engine."""
    try:
        previous: str | None = database.get_engine().url.render_as_string(hide_password=False)
    except RuntimeError:
        previous = None
    url = create_database("botyard_recovery")
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        app = create_app(make_settings(url))
        forget_instrument_refs()
        with app.app_context():
            upgrade()
            sync_roles()
            load_btc_history(SPAN_START - 2 * DAY, END)
            owner = create_user("owner@example.com", "owner", PASSWORD)
            database.session.commit()
            owner_id = owner.id
            database.session.remove()
        yield World(app=app, url=url, engine=engine, owner_id=owner_id)
    finally:
        database.session.remove()
        forget_instrument_refs()
        if previous is not None:
            database.configure(previous)
        else:
            database.get_engine().dispose()
        engine.dispose()
        drop_database(url)


class Procs:
    """``python -m <module>`` subprocesses of one test, each the leader of its own session."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``python -m module args``, its output in ``<log_dir>/<name>.log``."""
        with (self.log_dir / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append((name, proc))
        return proc

    def output(self, name: str) -> str:
        """What the named process wrote so far."""
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        """The tail of every process's output, for failure messages."""
        return "\n".join(
            f"--- {name} (pid {proc.pid}, exit {proc.poll()}) ---\n{self.output(name)[-3000:]}"
            for name, proc in self.started
        )

    def wait_for(self, check: Callable[[], T], timeout: float, what: str) -> T:
        """:func:`wait_for`, with the processes' output in the failure message."""
        return wait_for(check, timeout, what, logs=self.logs())

    def exit_code(self, proc: subprocess.Popen[bytes], timeout: float) -> int:
        """Wait for ``proc`` to exit on its own and return its exit code."""
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pid {proc.pid} still running\n{self.logs()}") from None

    def kill_all(self) -> None:
        """SIGKILL every process group this test started and reap the leaders."""
        for _name, proc in self.started:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)
