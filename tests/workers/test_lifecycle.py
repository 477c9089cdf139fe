"""Lifecycle jobs: erasure resumes after a crash and never touches a cancelled deletion;
exports are built and purged through RQ; the jobs are scheduled and take JSON-safe args."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, insert, select

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, current_run, start_bot
from models.bots.ticks import BotEquity
from models.identity.tables import User
from models.market.instruments import sync_instruments
from models.people.erasure import erase_account
from models.people.exports import request_export
from models.people.lifecycle import cancel_deletion, schedule_deletion
from models.people.tables import DataExport, Notification
from workers.enqueue import enqueue_export
from workers.lifecycle import erase_due_accounts
from workers.main import build_worker
from workers.queues import DEFAULT
from workers.schedule import PERIODIC

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BOT = {
    "name": "sma",
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": {"template": "sma_crossover", "params": {"fast": 3, "slow": 8}},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 2.0,
}


class Crash(Exception):
    """Stands in for a worker dying part-way."""


def _user_with_a_run(db: Any, make_user: Callable[..., Any], points: int) -> tuple[Any, BotRun]:
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    user = make_user()
    bot = create_bot(user.id, BOT)
    start_bot(user.id, bot.id, limit=10, now=T0)
    run = current_run(bot)
    assert run is not None
    db.execute(
        insert(BotEquity),
        [{"run_id": run.id, "ts": i * 3_600_000, "equity": 10_000.0 + i} for i in range(points)],
    )
    db.commit()
    return user, run


def _equity_left(db: Any, run_id: uuid.UUID) -> int:
    return int(db.scalar(select(func.count()).where(BotEquity.run_id == run_id)) or 0)


def test_an_erasure_cut_short_resumes_and_a_second_run_changes_nothing(
    app: Flask, db: Any, make_user: Callable[..., Any]
) -> None:
    user, run = _user_with_a_run(db, make_user, points=25)
    run_id, bot_id = run.id, run.bot_id
    schedule_deletion(db.get(User, user.id), T0, grace_days=30)
    db.commit()
    due = T0 + timedelta(days=30)

    steps: list[str] = []

    def crash_after_runs(table: str) -> None:
        steps.append(table)
        if table == "bot_runs":
            raise Crash(table)

    with pytest.raises(Crash):
        erase_account(user.id, due, batch=10, after_step=crash_after_runs)
    db.rollback()
    assert steps == ["bot_equity", "bot_trades", "execution_logs", "bot_runs"]
    assert _equity_left(db, run_id) == 0  # committed batch by batch before the crash
    assert db.get(Bot, bot_id) is not None  # not reached yet
    assert db.get(User, user.id).erased_at is None  # still due: the next pass resumes

    assert erase_due_accounts(now=due.isoformat()) == 1
    db.expire_all()
    assert db.get(Bot, bot_id) is None
    erased = db.get(User, user.id)
    assert erased.erased_at == due and erased.username.startswith("deleted-")
    snapshot = (erased.email, erased.username, erased.password_hash, erased.updated_at)
    assert erase_due_accounts(now=(due + timedelta(days=1)).isoformat()) == 0
    assert erase_account(user.id, due + timedelta(days=1)) is False
    db.expire_all()
    again = db.get(User, user.id)
    assert (again.email, again.username, again.password_hash, again.updated_at) == snapshot


def test_a_cancelled_or_early_deletion_is_never_erased(
    db: Any, make_user: Callable[..., Any]
) -> None:
    cancelled, waiting = make_user(), make_user()
    for user in (cancelled, waiting):
        schedule_deletion(user, T0, grace_days=30)
    assert cancel_deletion(cancelled, T0 + timedelta(days=1)) is True
    db.commit()
    assert erase_due_accounts(now=(T0 + timedelta(days=29)).isoformat()) == 0
    assert erase_due_accounts(now=(T0 + timedelta(days=400)).isoformat()) == 1
    db.expire_all()
    assert db.get(User, cancelled.id).erased_at is None
    assert db.get(User, cancelled.id).is_active
    assert db.get(User, waiting.id).erased_at is not None


def test_an_export_job_runs_through_rq_once_however_often_it_is_queued(
    app: Flask, db: Any, redis: Redis, make_user: Callable[..., Any]
) -> None:
    user, _run = _user_with_a_run(db, make_user, points=3)
    export = request_export(user.id, datetime.now(UTC), limit_per_day=3)
    db.commit()
    export_id = str(export.id)
    results = []
    for _ in range(2):
        job = enqueue_export(redis, export_id)
        assert job.id == f"export-{export_id}" and job.args == (export_id,)
        assert build_worker(app, (DEFAULT,), simple=True).work(burst=True)
        results.append(job.return_value())
    assert results == ["ready", "skipped"]
    db.expire_all()
    row = db.get(DataExport, export.id)
    assert row.status == "ready" and row.size_bytes and row.expires_at
    ready = db.scalars(
        select(Notification).where(
            Notification.user_id == user.id, Notification.event == "account.export_ready"
        )
    ).all()
    assert len(ready) == 1

    queue = Queue(DEFAULT, connection=redis)
    later = (row.expires_at + timedelta(seconds=1)).isoformat()
    purge = queue.enqueue("workers.exports.purge_exports", later)
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True)
    assert purge.return_value() == {"expired": 1, "failed": 0, "deleted": 0}
    db.expire_all()
    assert db.get(DataExport, export.id).status == "expired"


def test_the_lifecycle_jobs_are_scheduled_hourly() -> None:
    jobs = {spec.func: spec for spec in PERIODIC}
    for name in ("workers.exports.purge_exports", "workers.lifecycle.erase_due_accounts"):
        assert jobs[name].interval == 3600 and jobs[name].args == ()
