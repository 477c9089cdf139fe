"""The recompute job as a worker runs it, and its schedule from the settings."""

from __future__ import annotations

from typing import Any

from flask import Flask
from redis import Redis
from rq.job import Job

from models.leaderboards.reads import active_generation
from settings import Settings
from tests import leaderboard_world as world
from tests.helpers import REDIS_URL
from workers.main import build_worker
from workers.queues import DEFAULT, get_queue
from workers.schedule import PERIODIC, build_scheduler, periodic_jobs


def test_the_job_runs_on_the_default_queue_and_twice_is_harmless(
    app: Flask, db: Any, redis: Redis
) -> None:
    world.instruments()
    user = world.owner()
    world.ranked(world.bot(user), sharpe=1.0)
    db.commit()
    queue = get_queue(DEFAULT, redis)
    jobs = [
        queue.enqueue("workers.leaderboards.recompute_leaderboards", world.NOW.isoformat())
        for _ in range(2)
    ]
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    results = [Job.fetch(job.id, connection=redis).return_value() for job in jobs]
    assert [r["activated"] for r in results] == [True, True]
    assert results[0]["entries"] == results[1]["entries"] == 16
    assert results[1]["generation_id"] > results[0]["generation_id"]
    generation = active_generation()
    assert generation is not None and generation.id == results[1]["generation_id"]
    assert generation.job_id == jobs[1].id


def test_the_recompute_is_scheduled_every_leaderboard_interval_minutes() -> None:
    (spec,) = [p for p in PERIODIC if p.func == "workers.leaderboards.recompute_leaderboards"]
    assert spec.queue == DEFAULT and spec.interval == 15 * 60
    settings = Settings(env="test", redis_url=REDIS_URL or "", leaderboard_interval_minutes=5)
    (chosen,) = [p for p in periodic_jobs(settings) if p.id == spec.id]
    assert chosen.interval == 300
    assert build_scheduler(settings).periodic == periodic_jobs(settings)
