"""The catch-up sweep: lagging runs are ticked up to the newest candle, stale bars don't trade."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis

from models.bots.bots import create_bot
from models.bots.runs import BotRun, current_run, pause_bot, start_bot
from models.bots.ticks import BotEquity, run_trades
from tests.helpers import load_btc_history
from tests.workers.processes import BOT  # a BTC-USD 1h SMA bot
from workers.catchup import BACKLOG_JOBS, catch_up
from workers.main import build_worker
from workers.queues import BOTS, DEFAULT, get_queue
from workers.ticks import tick_bots

HOUR = 3_600_000
DAY = 24 * HOUR
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the newest stored 1h candle opens an hour before
NEWEST = END - HOUR
SPAN_START = END - 10 * DAY
STARTED_AT = datetime.fromtimestamp(SPAN_START / 1000, UTC)
LONG_AFTER = END + DAY  # a "now" when every stored candle closed long ago


@pytest.fixture
def lagging(db: Any, make_user: Callable[..., Any]) -> list[uuid.UUID]:
    """Three running runs and a paused one: one ticked to 30 h before the end, two never."""
    load_btc_history(SPAN_START - 2 * DAY, END)
    owner = make_user()
    runs = []
    for n in range(4):
        bot = create_bot(owner.id, {**BOT, "name": f"bot{n}"})
        start_bot(owner.id, bot.id, limit=10, now=STARTED_AT)
        run = current_run(bot)
        assert run is not None
        runs.append(run)
    db.commit()
    assert tick_bots([str(runs[0].id)], NEWEST - 30 * HOUR)["ticked"] == [str(runs[0].id)]
    pause_bot(owner.id, runs[3].bot_id, now=STARTED_AT)
    db.commit()
    # Ids, not instances: the worker ends the session after each job.
    return [run.id for run in runs]


def sweep(app: Flask, redis: Redis, now_ms: int) -> dict[str, int]:
    """Run the sweep as the scheduler would (a job on ``default``), then the ticks it queued."""
    job = get_queue(DEFAULT, redis).enqueue(catch_up, now_ms)
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    result = job.latest_result()
    assert result is not None and result.type == result.Type.SUCCESSFUL, result
    build_worker(app, (BOTS,), simple=True).work(burst=True)  # False when nothing was queued
    return dict(result.return_value)


def last_ticked(db: Any, run_id: uuid.UUID) -> int | None:
    return db.scalar(sa.select(BotRun.last_candle_ts).where(BotRun.id == run_id))


def test_lagging_runs_catch_up_in_order_without_trading_on_stale_bars(
    app: Flask, db: Any, redis: Redis, lagging: list[uuid.UUID]
) -> None:
    ticked, fresh_a, _fresh_b, _paused = lagging
    assert sweep(app, redis, LONG_AFTER) == {"runs": 3, "jobs": 1}
    assert [last_ticked(db, run) for run in lagging] == [NEWEST, NEWEST, NEWEST, None]
    # One equity point per candle the run ever processed: nothing missed, nothing doubled.
    for run_id in (ticked, fresh_a):
        points = db.scalar(sa.select(sa.func.count()).where(BotEquity.run_id == run_id))
        assert points == (NEWEST - SPAN_START) // HOUR + 1
    # Only the last BOT_FRESH_BARS bars could open a position; the missed ones did not.
    fresh_from = NEWEST - (app.extensions["botyard.settings"].bot_fresh_bars - 1) * HOUR
    late = run_trades(fresh_a)
    assert all(t.entry_ts >= fresh_from for t in late), late
    state = db.scalar(sa.select(BotRun.broker_state).where(BotRun.id == fresh_a))
    assert state["units"] == 0 or state["entry_ts"] >= fresh_from
    # The run that had traded live keeps its trades from before the gap, and opened none in it.
    gap = NEWEST - 30 * HOUR
    assert all(t.entry_ts <= gap or t.entry_ts >= fresh_from for t in run_trades(ticked))
    # A second pass finds nothing to do.
    assert sweep(app, redis, LONG_AFTER) == {"runs": 0, "jobs": 0}


def test_the_dispatcher_gets_a_grace_period_first(
    app: Flask, db: Any, redis: Redis, lagging: list[uuid.UUID]
) -> None:
    grace_ms = app.extensions["botyard.settings"].bot_sweep_grace_s * 1000
    just_closed = END + grace_ms - 1_000  # the newest candle closed less than the grace ago
    assert sweep(app, redis, just_closed) == {"runs": 0, "jobs": 0}
    assert last_ticked(db, lagging[1]) is None
    assert sweep(app, redis, END + grace_ms) == {"runs": 3, "jobs": 1}


def test_a_pass_is_bounded_and_takes_the_most_lagging_first(
    app: Flask, db: Any, redis: Redis, lagging: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = app.extensions["botyard.settings"]
    monkeypatch.setitem(app.extensions, "botyard.settings", settings.replace(bot_sweep_limit=2))
    assert sweep(app, redis, LONG_AFTER) == {"runs": 2, "jobs": 1}
    ticked, never_a, never_b, _paused = lagging
    assert last_ticked(db, ticked) == NEWEST - 30 * HOUR  # the least behind waits its turn
    assert [last_ticked(db, never_a), last_ticked(db, never_b)] == [NEWEST, NEWEST]
    assert sweep(app, redis, LONG_AFTER) == {"runs": 1, "jobs": 1}
    assert last_ticked(db, ticked) == NEWEST


def test_a_backlog_on_the_bots_queue_skips_the_pass(
    app: Flask, db: Any, redis: Redis, lagging: list[uuid.UUID]
) -> None:
    queue = get_queue(BOTS, redis)
    for n in range(BACKLOG_JOBS + 1):
        queue.enqueue("os.getpid", job_id=f"waiting-{n}")
    job = get_queue(DEFAULT, redis).enqueue(catch_up, LONG_AFTER)
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    assert job.latest_result().return_value == {"runs": 0, "jobs": 0}
    assert queue.count == BACKLOG_JOBS + 1
