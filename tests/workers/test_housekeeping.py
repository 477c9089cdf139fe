"""The session purge job: through RQ in-process, twice, and through the real worker process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.backtests.backtests import Backtest, Limits, build_spec, create_backtest
from models.bots.bots import create_bot
from models.bots.execution_logs import ExecutionLog
from models.bots.runs import current_run, start_bot
from models.identity.tables import AuthSession, PasswordResetToken
from models.market.data import load_history
from models.market.instruments import sync_instruments
from models.people.preferences import trading_defaults
from tests.helpers import REDIS_URL, create_database, drop_database
from workers import housekeeping
from workers.enqueue import enqueue_purge_sessions
from workers.main import build_worker
from workers.queues import BACKTESTS, DEFAULT, get_queue

ROOT = Path(__file__).resolve().parents[2]


def _session(
    user: Any, expires_days_ago: int | None = None, revoked_days_ago: int | None = None
) -> AuthSession:
    now = datetime.now(UTC)
    return AuthSession(
        user=user,
        refresh_jti=uuid.uuid4().hex,
        expires_at=now - timedelta(days=expires_days_ago)
        if expires_days_ago
        else now + timedelta(days=5),
        revoked_at=now - timedelta(days=revoked_days_ago) if revoked_days_ago else None,
    )


def test_purge_runs_through_rq_and_is_idempotent(
    app: Flask, db: Any, make_user: Any, redis: Redis
) -> None:
    user = make_user()
    keep = [_session(user), _session(user, expires_days_ago=3), _session(user, revoked_days_ago=2)]
    purge = [_session(user, expires_days_ago=45), _session(user, revoked_days_ago=31)]
    db.add_all(keep + purge)
    db.commit()
    keep_ids = {s.id for s in keep}

    for attempt in range(2):
        job = enqueue_purge_sessions(redis)
        worker = build_worker(app, (DEFAULT,), simple=True)
        assert worker.work(burst=True) is True
        job = Job.fetch(job.id, connection=redis)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == (2 if attempt == 0 else 0)
        remaining = set(db.scalars(sa.select(AuthSession.id).where(AuthSession.user_id == user.id)))
        assert remaining == keep_ids


def test_job_arguments_are_json_safe(redis: Redis) -> None:
    job = enqueue_purge_sessions(redis)
    assert job.args == () and job.kwargs == {}
    assert job.func_name == "workers.housekeeping.purge_sessions"
    assert job.id == "housekeeping-purge-sessions-manual"


@pytest.fixture
def committed_db() -> Iterator[str]:
    url = create_database("botyard_worker")
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
    drop_database(url)


def test_real_worker_process_drains_in_burst_mode(committed_db: str, redis: Redis) -> None:
    engine = sa.create_engine(committed_db)
    old = datetime.now(UTC) - timedelta(days=60)
    with engine.begin() as conn:
        user_id = conn.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, username, username_key, password_hash) "
                "VALUES (gen_random_uuid(), 'w@example.com', 'w@example.com', 'worker_user', "
                "'worker_user', 'x') RETURNING id"
            )
        ).scalar_one()
        for _ in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO auth_sessions (id, user_id, refresh_jti, expires_at) "
                    "VALUES (gen_random_uuid(), :u, md5(random()::text), :e)"
                ),
                {"u": user_id, "e": old},
            )
    job = enqueue_purge_sessions(redis)
    env = {
        **os.environ,
        "DATABASE_URL": committed_db,
        "REDIS_URL": REDIS_URL or "",
        "BOTYARD_ENV": "test",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "workers.main", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Job.fetch(job.id, connection=redis).get_status() == JobStatus.FINISHED
    assert "sessions_purged" in proc.stderr and "job_id=" in proc.stderr
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM auth_sessions")).scalar_one() == 0
    engine.dispose()


def test_worker_rejects_unknown_queue_names() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workers.main", "--queues", "bots,nope", "--burst"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown queue(s): nope" in proc.stderr


def test_reset_token_purge_runs_through_rq(
    app: Flask, db: Any, make_user: Any, redis: Redis
) -> None:
    user = make_user()
    now = datetime.now(UTC)

    def token(created_days_ago: int, used: bool) -> PasswordResetToken:
        created = now - timedelta(days=created_days_ago)
        return PasswordResetToken(
            user_id=user.id,
            token_hash=uuid.uuid4().hex * 2,
            created_at=created,
            expires_at=created + timedelta(minutes=30),
            used_at=created if used else None,
        )

    fresh, old_unused, old_used = token(0, False), token(9, False), token(8, True)
    db.add_all([fresh, old_unused, old_used])
    db.commit()
    for expected in (2, 0):
        job = get_queue(DEFAULT, redis).enqueue("workers.housekeeping.purge_reset_tokens")
        assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
        assert Job.fetch(job.id, connection=redis).return_value() == expected
    remaining = db.scalars(
        sa.select(PasswordResetToken.id).where(PasswordResetToken.user_id == user.id)
    )
    assert set(remaining) == {fresh.id}


def test_lost_backtests_are_requeued_and_endless_ones_given_up(
    app: Flask, db: Any, make_user: Any, redis: Redis
) -> None:
    provider = SyntheticProvider()
    instruments, _ = sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    btc = next(i for i in instruments if i.symbol == "BTC-USD")
    end = 1_767_225_600_000
    load_history(provider, btc, SYNTHETIC_INSTRUMENTS[0], end - 5 * 86_400_000, end)
    user = make_user()
    spec = build_spec(
        {
            "symbol": "BTC-USD",
            "timeframe": "1h",
            "strategy": {"template": "macd"},
            "start": end - 5 * 86_400_000,
            "end": end,
        },
        None,
        end,
        Limits(max_bars=10**6, max_days=100, quota=10),
        trading_defaults(user.id),
    )
    # Postgres has them, Redis lost them (never enqueued here): one fresh, one that keeps dying.
    lost = create_backtest(user.id, spec, quota=10)
    doomed = create_backtest(user.id, spec, quota=10)
    doomed.status, doomed.attempts = "running", 3
    db.flush()
    db.execute(sa.text("UPDATE backtests SET created_at = now() - interval '1 hour'"))
    db.commit()

    job = get_queue(DEFAULT, redis).enqueue("workers.housekeeping.requeue_backtests")
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    assert Job.fetch(job.id, connection=redis).return_value() == 1
    db.expire_all()
    assert db.get(Backtest, doomed.id).status == "failed"
    assert "3 attempts" in (db.get(Backtest, doomed.id).error or "")
    assert build_worker(app, (BACKTESTS,), simple=True).work(burst=True) is True
    db.expire_all()
    assert db.get(Backtest, lost.id).status == "succeeded"
    # A second sweep finds nothing to do.
    job = get_queue(DEFAULT, redis).enqueue("workers.housekeeping.requeue_backtests")
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    assert Job.fetch(job.id, connection=redis).return_value() == 0


def test_old_tick_log_entries_are_purged_in_batches_and_the_rest_kept(
    app: Flask, db: Any, make_user: Any, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    owner = make_user()
    bot = create_bot(
        owner.id,
        {
            "name": "logs",
            "symbol": "BTC-USD",
            "timeframe": "1h",
            "strategy": {"template": "sma_crossover"},
            "initial_capital": 10_000.0,
            "fee": 0.001,
            "slippage_bps": 0.0,
        },
    )
    start_bot(owner.id, bot.id, limit=10, now=datetime.now(UTC))
    run = current_run(bot)
    assert run is not None
    keep_days = app.extensions["botyard.settings"].bot_tick_log_days
    now = datetime.now(UTC)

    def entry(event: str, days_ago: float) -> dict[str, Any]:
        ts = now - timedelta(days=days_ago)
        return {
            "run_id": run.id,
            "bot_id": bot.id,
            "ts": ts,
            "level": "info",
            "event": event,
            "data": {},
            "candle_ts": int(ts.timestamp() * 1000),
        }

    old_ticks = [entry("tick", keep_days + 1 + n / 10) for n in range(7)]
    kept = [entry("tick", keep_days - 1), entry("trade_closed", keep_days + 5)]
    db.execute(sa.insert(ExecutionLog), old_ticks + kept)
    db.commit()
    monkeypatch.setattr(housekeeping, "TICK_LOG_BATCH", 3)  # 7 rows: batches of 3, 3, 1
    for expected in (7, 0):
        job = get_queue(DEFAULT, redis).enqueue("workers.housekeeping.purge_tick_logs")
        assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
        assert Job.fetch(job.id, connection=redis).return_value() == expected
    left = db.execute(
        sa.select(ExecutionLog.event, ExecutionLog.ts).where(ExecutionLog.run_id == run.id)
    ).all()
    events = sorted(event for event, _ts in left)
    assert events == ["run_started", "tick", "trade_closed"]
    assert all(ts > now - timedelta(days=keep_days) for event, ts in left if event == "tick")
