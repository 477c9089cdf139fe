"""Activity retention: the daily purge, through RQ in-process, with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus

from models.people.activities import purge_before, record
from models.people.tables import Activity
from settings import Settings, SettingsError
from workers.activity import purge_activities
from workers.main import build_worker
from workers.queues import DEFAULT, get_queue
from workers.schedule import PERIODIC

NOW = datetime(2027, 6, 1, 3, 0, tzinfo=UTC)


def _rows(db: Any, ages_days: list[float]) -> None:
    # Only this test's rows (rows other tests' processes committed are gone until rollback).
    db.execute(sa.delete(Activity))
    for age in ages_days:
        record("bot.created", None, created_at=NOW - timedelta(days=age))
    db.commit()


def _ages(db: Any) -> list[float]:
    times = db.scalars(sa.select(Activity.created_at).order_by(Activity.created_at.desc()))
    return [(NOW - t).total_seconds() / 86400 for t in times]


def test_the_purge_runs_through_rq_with_the_setting_and_is_idempotent(
    app: Flask, db: Any, redis: Redis
) -> None:
    original = app.extensions["botyard.settings"]
    app.extensions["botyard.settings"] = original.replace(activity_retention_days=30)
    try:
        _rows(db, [0, 29.9, 30.1, 400])
        for attempt in range(2):
            job = get_queue(DEFAULT, redis).enqueue(
                "workers.activity.purge_activities", NOW.isoformat()
            )
            assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
            job = Job.fetch(job.id, connection=redis)
            assert job.get_status() == JobStatus.FINISHED
            assert job.return_value() == (2 if attempt == 0 else 0)
            assert [round(a, 1) for a in _ages(db)] == [0.0, 29.9]
    finally:
        app.extensions["botyard.settings"] = original


def test_the_default_keeps_a_year(app: Flask, db: Any) -> None:
    _rows(db, [364, 366])
    assert purge_activities(NOW.isoformat()) == 1
    assert [round(a) for a in _ages(db)] == [364]


def test_batches_commit_one_by_one_and_stop_at_the_pass_limit(db: Any) -> None:
    _rows(db, [100 + i for i in range(7)])
    assert purge_before(NOW - timedelta(days=50), batch=2, max_batches=2) == 4
    assert len(_ages(db)) == 3  # the next pass goes on
    assert purge_before(NOW - timedelta(days=50), batch=2, max_batches=10) == 3
    assert _ages(db) == []


def test_it_is_a_daily_periodic_job_with_no_arguments() -> None:
    (spec,) = [p for p in PERIODIC if p.func == "workers.activity.purge_activities"]
    assert spec.interval == 86400 and spec.args == ()


@pytest.mark.parametrize("days", [0, 3651])
def test_retention_is_bounded(days: int) -> None:
    with pytest.raises(SettingsError, match="ACTIVITY_RETENTION_DAYS"):
        Settings(activity_retention_days=days)
