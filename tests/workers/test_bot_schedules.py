"""The bot-schedule job: start at, stop at, daily windows; once per ``now``; through RQ."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from rq.job import Job, JobStatus

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import Bot, create_bot
from models.bots.execution_logs import logs_page
from models.bots.runs import BotRun, pause_bot, resume_bot, start_bot, stop_bot
from models.market.instruments import sync_instruments
from workers.bot_schedules import apply_schedules_at
from workers.main import build_worker
from workers.queues import DEFAULT, get_queue
from workers.schedule import PERIODIC

MON = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}
BOT = {"symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA, "initial_capital": 10_000.0}
OFFICE = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
NOTHING = {"started": 0, "stopped": 0, "paused": 0, "resumed": 0, "refused": 0, "failed": 0}


def at(hhmm: str, day: int = 0) -> datetime:
    """Monday + ``day`` days at ``hhmm`` UTC."""
    hours, minutes = map(int, hhmm.split(":"))
    return MON + timedelta(days=day, hours=hours, minutes=minutes)


def schedule(
    start_at: datetime | None = None,
    stop_at: datetime | None = None,
    windows: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """A schedule in its stored form."""
    return {
        "start_at": start_at.isoformat() if start_at else None,
        "stop_at": stop_at.isoformat() if stop_at else None,
        "windows": list(windows),
    }


def counts(**done: int) -> dict[str, int]:
    return {**NOTHING, **done}


@pytest.fixture
def owner(db: Any, make_user: Callable[..., Any]) -> Any:
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    user = make_user()
    db.commit()
    return user


@pytest.fixture
def make_bot(db: Any, owner: Any) -> Callable[..., Bot]:
    """A draft bot of ``owner`` with that schedule, committed."""
    names = iter(range(1, 1000))

    def make(plan: dict[str, Any] | None = None) -> Bot:
        bot = create_bot(
            owner.id,
            {
                **BOT,
                "name": f"bot-{next(names)}",
                "fee": 0.001,
                "slippage_bps": 0.0,
                "schedule": plan,
            },
        )
        db.commit()
        return bot

    return make


def state(db: Any, bot: Bot) -> tuple[str, list[tuple[str, datetime, str | None]]]:
    """The bot's status and its runs' ``(status, started_at, paused_by)``, oldest first."""
    db.expire_all()
    runs = db.scalars(sa.select(BotRun).where(BotRun.bot_id == bot.id).order_by(BotRun.started_at))
    return db.get(Bot, bot.id).status, [(r.status, r.started_at, r.paused_by) for r in runs]


def events(bot: Bot) -> list[tuple[str, dict[str, Any]]]:
    """The bot's execution log, oldest first: ``(event, data)``."""
    return [(row.event, row.data) for row in reversed(logs_page(bot.id))]


def test_start_at_starts_a_draft_bot_once(db: Any, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(schedule(start_at=at("09:00")))
    assert apply_schedules_at(at("08:59")) == NOTHING
    assert state(db, bot) == ("draft", [])

    assert apply_schedules_at(at("09:00")) == counts(started=1)
    assert state(db, bot) == ("running", [("running", at("09:00"), None)])
    assert events(bot) == [("run_started", {"initial_capital": 10_000.0, "by": "schedule"})]
    assert apply_schedules_at(at("09:00")) == NOTHING  # the same pass again changes nothing

    # Stopped by its owner after the scheduled start, it stays stopped.
    stop_bot(bot.owner_id, bot.id, at("10:00"))
    db.commit()
    assert apply_schedules_at(at("11:00")) == NOTHING
    assert state(db, bot)[0] == "stopped"


def test_start_at_starts_a_stopped_bot_but_not_an_errored_one(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    stopped, errored = make_bot(), make_bot()
    for bot in (stopped, errored):
        start_bot(owner.id, bot.id, limit=10, now=at("08:00"))
        stop_bot(owner.id, bot.id, at("08:30"))
        bot.schedule = schedule(start_at=at("09:00"))
    errored.status = "error"
    db.commit()

    assert apply_schedules_at(at("09:30")) == counts(started=1)
    runs = state(db, stopped)[1]
    assert state(db, stopped)[0] == "running" and [r[1] for r in runs] == [at("08:00"), at("09:30")]
    assert state(db, errored) == ("error", [("stopped", at("08:00"), None)])


def test_no_start_once_stop_at_has_passed(db: Any, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(schedule(start_at=at("09:00"), stop_at=at("10:00")))
    assert apply_schedules_at(at("10:00")) == NOTHING
    assert state(db, bot) == ("draft", [])


def test_stop_at_stops_running_and_paused_bots_started_before_it(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    running, paused, later = make_bot(), make_bot(), make_bot()
    for bot, started in ((running, "09:00"), (paused, "09:00"), (later, "17:30")):
        start_bot(owner.id, bot.id, limit=10, now=at(started))
        bot.schedule = schedule(stop_at=at("17:00"))
    pause_bot(owner.id, paused.id, at("12:00"))
    db.commit()

    assert apply_schedules_at(at("16:59")) == NOTHING
    assert apply_schedules_at(at("17:45")) == counts(stopped=2)
    for bot in (running, paused):
        assert state(db, bot)[0] == "stopped"
        stopped_at = db.scalar(sa.select(BotRun.stopped_at).where(BotRun.bot_id == bot.id))
        assert stopped_at == at("17:45")
        assert events(bot)[-1] == ("run_stopped", {"by": "schedule"})
    # Started by its owner after stop_at: the owner's run, left alone.
    assert state(db, later)[0] == "running"
    assert apply_schedules_at(at("17:45")) == NOTHING


def test_windows_pause_and_resume_a_running_bot(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot(schedule(windows=(OFFICE,)))
    start_bot(owner.id, bot.id, limit=10, now=at("10:00"))
    db.commit()
    started = at("10:00")

    assert apply_schedules_at(at("16:59")) == NOTHING
    assert apply_schedules_at(at("17:00")) == counts(paused=1)  # the end is excluded
    assert state(db, bot) == ("paused", [("paused", started, "schedule")])
    assert apply_schedules_at(at("17:00")) == NOTHING
    assert apply_schedules_at(at("09:00", day=5)) == NOTHING  # Saturday: no window

    assert apply_schedules_at(at("09:00", day=7)) == counts(resumed=1)  # next Monday
    assert state(db, bot) == ("running", [("running", started, None)])
    assert apply_schedules_at(at("09:00", day=7)) == NOTHING
    assert [e for e in events(bot) if e[0] != "run_started"] == [
        ("run_paused", {"by": "schedule"}),
        ("run_resumed", {"by": "schedule"}),
    ]


def test_the_schedule_never_resumes_an_owners_pause_but_overrules_an_owners_resume(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot(schedule(windows=(OFFICE,)))
    start_bot(owner.id, bot.id, limit=10, now=at("10:00"))
    pause_bot(owner.id, bot.id, at("11:00"))
    db.commit()
    assert apply_schedules_at(at("12:00")) == NOTHING  # inside a window, yet the owner's pause
    assert state(db, bot)[1][0][2] == "owner"

    resume_bot(owner.id, bot.id)
    db.commit()
    assert apply_schedules_at(at("20:00")) == counts(paused=1)  # the owner resumed at night
    assert state(db, bot)[1][0][2] == "schedule"


def test_a_bot_started_outside_its_windows_is_paused_by_the_same_pass(
    db: Any, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot(schedule(start_at=at("07:00"), windows=(OFFICE,)))
    assert apply_schedules_at(at("07:00")) == counts(started=1, paused=1)
    assert state(db, bot) == ("paused", [("paused", at("07:00"), "schedule")])
    assert apply_schedules_at(at("07:00")) == NOTHING
    assert apply_schedules_at(at("09:00")) == counts(resumed=1)


def test_clearing_the_windows_resumes_what_the_schedule_paused(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    bot = make_bot(schedule(windows=(OFFICE,)))
    start_bot(owner.id, bot.id, limit=10, now=at("10:00"))
    db.commit()
    assert apply_schedules_at(at("20:00")) == counts(paused=1)
    db.get(Bot, bot.id).schedule = None
    db.commit()
    assert apply_schedules_at(at("20:01")) == counts(resumed=1)
    assert state(db, bot)[0] == "running"


def test_a_start_over_the_owners_limit_is_refused_and_tried_again(
    app: Flask, db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    limit = app.extensions["botyard.settings"].bot_limit_user
    live = [make_bot() for _ in range(limit)]
    for bot in live:
        start_bot(owner.id, bot.id, limit=limit, now=at("08:00"))
    scheduled = make_bot(schedule(start_at=at("09:00")))
    db.commit()

    assert apply_schedules_at(at("09:00")) == counts(refused=1)
    assert state(db, scheduled) == ("draft", [])
    assert apply_schedules_at(at("09:00")) == counts(refused=1)  # refused again, still nothing

    stop_bot(owner.id, live[0].id, at("09:10"))
    db.commit()
    assert apply_schedules_at(at("09:15")) == counts(started=1)
    assert state(db, scheduled) == ("running", [("running", at("09:15"), None)])


def test_one_broken_schedule_does_not_hold_up_the_others(
    db: Any, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    good, broken = make_bot(schedule(windows=(OFFICE,))), make_bot()
    for bot in (good, broken):
        start_bot(owner.id, bot.id, limit=10, now=at("10:00"))
    # Only a hand edit can store this: the API refuses it.
    db.get(Bot, broken.id).schedule = schedule(windows=({"start": "9am", "end": "5pm"},))
    db.commit()

    assert apply_schedules_at(at("20:00")) == counts(paused=1, failed=1)
    assert state(db, good)[0] == "paused" and state(db, broken)[0] == "running"


def test_the_job_runs_through_rq_on_the_default_queue(
    app: Flask, db: Any, redis: Redis, owner: Any, make_bot: Callable[..., Bot]
) -> None:
    spec = next(job for job in PERIODIC if job.id == "apply-bot-schedules")
    assert (spec.func, spec.interval, spec.queue) == (
        "workers.bot_schedules.apply_schedules",
        30,
        DEFAULT,
    )
    now = datetime.now(UTC)
    # A window from two to three hours from now, every day: now is outside it.
    outside = {"start": (now + timedelta(hours=2)).strftime("%H:%M")}
    outside["end"] = (now + timedelta(hours=3)).strftime("%H:%M")
    starts = make_bot(schedule(start_at=now - timedelta(minutes=1)))
    pauses = make_bot(schedule(windows=(outside,)))
    start_bot(owner.id, pauses.id, limit=10, now=now - timedelta(hours=1))
    db.commit()

    for expected in (counts(started=1, paused=1), NOTHING):
        job = get_queue(DEFAULT, redis).enqueue(spec.func)
        assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
        job = Job.fetch(job.id, connection=redis)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == expected
    assert state(db, starts)[0] == "running"
    assert state(db, pauses)[1][0][2] == "schedule"
