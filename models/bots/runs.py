"""Live paper runs of bots and the lifecycle actions that start, pause, resume and stop them.

Each start opens a new ``bot_runs`` row holding a fresh paper account (the engine's
:class:`~engine.broker.BrokerState`); at most one run per bot is active (running or
paused), which a partial unique index backs. See docs/execution.md.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from engine.broker import BrokerConfig, BrokerState
from models.bots.bots import ACTIVE_BOT_STATUSES, Bot
from models.bots.execution_logs import write_log
from models.bots.mirrors import BotMirror
from models.db import Base
from models.db import session as db
from models.errors import Conflict, NotFound
from models.identity.quotas import enforce_quota, lock_owner
from models.market.tables import Instrument

RUN_STATUSES = ("running", "paused", "stopped", "error")
STARTABLE_BOT_STATUSES = ("draft", "stopped", "error")
# Who took a lifecycle action: the owner through the API, or the bot's schedule.
Actor = Literal["owner", "schedule"]

# Why an action is refused, by the bot's current status (messages a person can act on).
_REFUSALS = {
    "start": {
        "running": "The bot is already running.",
        "paused": "The bot is paused; resume it or stop it.",
    },
    "pause": {
        "paused": "The bot is already paused.",
        "draft": "The bot is not running; start it first.",
        "stopped": "The bot is stopped; start it first.",
        "error": "The bot stopped on an error; start it again first.",
    },
    "resume": {
        "running": "The bot is already running.",
        "draft": "The bot is not paused; start it instead.",
        "stopped": "The bot is stopped; start it instead.",
        "error": "The bot stopped on an error; start it instead.",
    },
    "stop": {
        "draft": "The bot has never been started.",
        "stopped": "The bot is already stopped.",
        "error": "The bot has already stopped on an error.",
    },
}


class BotRun(Base):
    """One live paper run of a bot, from a start to its stop (or error)."""

    __tablename__ = "bot_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running','paused','stopped','error')", name="status_known"),
        CheckConstraint("consecutive_failures >= 0", name="failures_non_negative"),
        CheckConstraint("paused_by IN ('owner','schedule')", name="paused_by_known"),
        Index("ix_bot_runs_bot_id_started_at", "bot_id", "started_at"),
        Index("ix_bot_runs_owner_id", "owner_id"),
        # The invariant "one active run per bot", enforced by Postgres, not just by the code.
        Index(
            "uq_bot_runs_bot_id_active",
            "bot_id",
            unique=True,
            postgresql_where=text("status IN ('running','paused')"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="running", server_default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who paused the run: the schedule resumes only what it paused itself.
    paused_by: Mapped[str | None] = mapped_column(String(16))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    initial_capital: Mapped[float] = mapped_column(Float)
    broker_state: Mapped[dict[str, Any]] = mapped_column(JSONB)
    last_candle_ts: Mapped[int | None] = mapped_column(BigInteger)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# (initial capital, fee, slippage bps, fractional, size precision): what a BrokerConfig needs.
Costs = tuple[float, float, float, bool, int]


def costs_of(bot: Bot) -> Costs:
    """The bot's costs and its instrument's unit rules, in :data:`Costs` order."""
    instrument = bot.instrument
    return (
        bot.initial_capital,
        bot.fee,
        bot.slippage_bps,
        instrument.fractional,
        instrument.size_precision,
    )


def config_from(costs: Costs) -> BrokerConfig:
    """The paper account's config from :data:`Costs`."""
    capital, fee, slippage, fractional, precision = costs
    return BrokerConfig(
        initial_capital=capital,
        fee=fee,
        slippage_bps=slippage,
        fractional=fractional,
        size_precision=precision,
    )


def broker_config(bot: Bot) -> BrokerConfig:
    """The paper account's costs and unit rules, from the bot and its instrument.

    A run's trading fields are frozen while it is active, so every tick rebuilds the
    same config the run started with.
    """
    return config_from(costs_of(bot))


def current_run(bot: Bot) -> BotRun | None:
    """The bot's latest run (active or not), or None if it was never started."""
    return db.scalar(
        select(BotRun)
        .where(BotRun.bot_id == bot.id)
        .order_by(BotRun.started_at.desc(), BotRun.created_at.desc())
        .limit(1)
    )


def running_runs_on(symbols: list[str], timeframes: list[str]) -> list[tuple[str, str, uuid.UUID]]:
    """``(symbol, timeframe, run_id)`` of every running run trading one of those pairs.

    Ordered by symbol, timeframe and run id, so the dispatcher cuts the same chunks
    every time it handles the same event. Mirrors are left out: their source's tick job
    advances them, right after the source (docs/execution.md, "Mirrors").
    """
    rows = db.execute(
        select(Instrument.symbol, Bot.timeframe, BotRun.id)
        .join(Bot, Bot.id == BotRun.bot_id)
        .join(Instrument, Instrument.id == Bot.instrument_id)
        .where(
            BotRun.status == "running",
            Instrument.symbol.in_(symbols),
            Bot.timeframe.in_(timeframes),
            ~exists().where(BotMirror.bot_id == BotRun.bot_id),
        )
        .order_by(Instrument.symbol, Bot.timeframe, BotRun.id)
    )
    return [(str(symbol), str(tf), run_id) for symbol, tf, run_id in rows]


def active_run(bot: Bot) -> BotRun | None:
    """The bot's running or paused run, if any (at most one: a partial unique index)."""
    return db.scalar(
        select(BotRun).where(BotRun.bot_id == bot.id, BotRun.status.in_(ACTIVE_BOT_STATUSES))
    )


def lock_bot(bot_id: uuid.UUID) -> Bot | None:
    """The bot re-read under its row lock, so two actions on it run one after the other."""
    return db.scalar(
        select(Bot)
        .where(Bot.id == bot_id)
        .with_for_update(of=Bot)
        .execution_options(populate_existing=True)
    )


def _lock_owned_bot(owner_id: uuid.UUID, bot_id: uuid.UUID) -> Bot:
    """The caller's bot under its row lock; :class:`NotFound` for anyone else's."""
    bot = lock_bot(bot_id)
    if bot is None or bot.owner_id != owner_id:
        raise NotFound("No bot with that id.")
    return bot


def _refuse_unless(bot: Bot, action: str, allowed: tuple[str, ...]) -> None:
    if bot.status not in allowed:
        raise Conflict(_REFUSALS[action].get(bot.status, f"The bot is {bot.status}."))


def _by(by: Actor) -> dict[str, Any]:
    """Log data naming the schedule as the actor; an owner's action keeps its data as it was."""
    return {} if by == "owner" else {"by": by}


def start_bot(
    owner_id: uuid.UUID, bot_id: uuid.UUID, limit: int, now: datetime, by: Actor = "owner"
) -> Bot:
    """Start a draft, stopped or errored bot: a new run with a fresh paper account.

    Raises :class:`Conflict` for any other status and :class:`QuotaExceeded` when the
    owner already has ``limit`` bots running or paused. The owner's row is locked first,
    so two concurrent starts cannot both squeeze under the limit.
    """
    lock_owner(owner_id)  # before the bot: the lock order of every owner-quota action
    bot = _lock_owned_bot(owner_id, bot_id)
    _refuse_unless(bot, "start", STARTABLE_BOT_STATUSES)
    enforce_quota(
        owner_id,
        Bot,
        ACTIVE_BOT_STATUSES,
        limit,
        what="bot(s) running or paused",
        advice="stop one first.",
    )
    stale = active_run(bot)
    if stale is not None:  # cannot happen while the bot says it is inactive; heal if it does
        stale.status, stale.stopped_at = "stopped", now
        db.flush()
    config = broker_config(bot)
    run = BotRun(
        bot_id=bot.id,
        owner_id=owner_id,
        status="running",
        started_at=now,
        initial_capital=bot.initial_capital,
        broker_state=BrokerState.start(config).as_dict(),
        consecutive_failures=0,
    )
    db.add(run)
    bot.status = "running"
    db.flush()
    write_log(
        run.id,
        bot.id,
        "info",
        "run_started",
        data={"initial_capital": bot.initial_capital, **_by(by)},
    )
    return bot


def pause_bot(owner_id: uuid.UUID, bot_id: uuid.UUID, now: datetime, by: Actor = "owner") -> Bot:
    """Pause a running bot: its run keeps its account but is not ticked. :class:`Conflict` else."""
    bot = _lock_owned_bot(owner_id, bot_id)
    _refuse_unless(bot, "pause", ("running",))
    run = _require_active_run(bot)
    run.status, run.paused_at, run.paused_by = "paused", now, by
    bot.status = "paused"
    db.flush()
    write_log(run.id, bot.id, "info", "run_paused", data=_by(by))
    return bot


def resume_bot(owner_id: uuid.UUID, bot_id: uuid.UUID, by: Actor = "owner") -> Bot:
    """Resume a paused bot on the same run and account. :class:`Conflict` otherwise."""
    bot = _lock_owned_bot(owner_id, bot_id)
    _refuse_unless(bot, "resume", ("paused",))
    run = _require_active_run(bot)
    run.status, run.paused_at, run.paused_by = "running", None, None
    bot.status = "running"
    db.flush()
    write_log(run.id, bot.id, "info", "run_resumed", data=_by(by))
    return bot


def stop_bot(owner_id: uuid.UUID, bot_id: uuid.UUID, now: datetime, by: Actor = "owner") -> Bot:
    """Stop a running or paused bot and close its run. :class:`Conflict` otherwise."""
    bot = _lock_owned_bot(owner_id, bot_id)
    _refuse_unless(bot, "stop", ACTIVE_BOT_STATUSES)
    run = active_run(bot)
    if run is not None:
        run.status, run.stopped_at = "stopped", now
    bot.status = "stopped"
    db.flush()
    if run is not None:
        write_log(run.id, bot.id, "info", "run_stopped", data=_by(by))
    return bot


def _require_active_run(bot: Bot) -> BotRun:
    run = active_run(bot)
    if run is None:
        # The bot says it is active but has no run: only a hand edit of the database does this.
        raise Conflict("The bot has no active run; stop it and start it again.")
    return run
