"""Bots: what a user's bot trades, how it decides and what it may risk.

A bot's strategy and risk options are JSON validated by the engine before they are
stored (``models.bots.strategy_specs``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Select,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from models.bots.strategy_specs import merge_risk, validate_risk, validate_strategy
from models.db import Base
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity.tables import User
from models.market.instruments import get_instrument
from models.market.tables import Instrument

BOT_STATUSES = ("draft", "running", "paused", "stopped", "error")
ACTIVE_BOT_STATUSES = ("running", "paused")
# Who may see a bot: its owner only, anyone with its id, or anyone (profiles, leaderboards).
BOT_VISIBILITIES = ("private", "unlisted", "public")
# Whose card anyone (authenticated) may read by id.
SHARED_VISIBILITIES = ("unlisted", "public")
# Fields that change how a bot trades: frozen while it has an active run.
TRADING_FIELDS = (
    "symbol",
    "timeframe",
    "strategy",
    "risk",
    "initial_capital",
    "fee",
    "slippage_bps",
)


class Bot(Base):
    """A user's trading bot: what it trades, how it decides, what it may risk."""

    __tablename__ = "bots"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_bots_owner_id_name"),
        Index("ix_bots_owner_id_created_at", "owner_id", "created_at"),
        CheckConstraint("visibility IN ('private','unlisted','public')", name="visibility_known"),
        CheckConstraint(
            "status IN ('draft','running','paused','stopped','error')", name="status_known"
        ),
        CheckConstraint("initial_capital > 0", name="capital_positive"),
        CheckConstraint("fee >= 0 AND fee < 0.1", name="fee_range"),
        CheckConstraint("slippage_bps >= 0 AND slippage_bps <= 1000", name="slippage_range"),
        # The schedule job's candidates (docs/execution.md#schedules); most bots have none.
        Index("ix_bots_status_scheduled", "status", postgresql_where=text("schedule IS NOT NULL")),
        # A bot's forks (counted on its card); most bots are none.
        Index(
            "ix_bots_forked_from_id",
            "forked_from_id",
            postgresql_where=text("forked_from_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str | None] = mapped_column(Text)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instruments.id", ondelete="RESTRICT"))
    timeframe: Mapped[str] = mapped_column(String(3))
    strategy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    risk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    initial_capital: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    slippage_bps: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    visibility: Mapped[str] = mapped_column(String(16), default="private", server_default="private")
    # Set by moderation: a hidden bot stays its owner's but leaves boards and profiles.
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The bot this one was forked from (NULL when not a fork, or once that bot is deleted).
    forked_from_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bots.id", ondelete="SET NULL")
    )
    # start_at, stop_at and daily windows (models.bots.schedules); None is SQL NULL, not JSON null.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    instrument: Mapped[Instrument] = relationship(lazy="joined")

    @property
    def symbol(self) -> str:
        """The traded instrument's symbol."""
        return self.instrument.symbol


def get_owned_bot(owner_id: uuid.UUID, bot_id: uuid.UUID) -> Bot:
    """The caller's bot; someone else's is as unknown as a missing one (:class:`NotFound`)."""
    bot = db.get(Bot, bot_id)
    if bot is None or bot.owner_id != owner_id:
        raise NotFound("No bot with that id.")
    return bot


def owner_is_active(user: Any = User) -> ColumnElement[bool]:
    """SQL: the bot's owner (``User``, or an alias of it, joined) may be shown: active, not
    leaving, not erased."""
    return and_(
        user.is_active.is_(True),
        user.disabled_at.is_(None),
        user.deletion_requested_at.is_(None),
        user.erased_at.is_(None),
    )


def viewable_bot(viewer_id: uuid.UUID, bot_id: uuid.UUID) -> tuple[Bot, bool]:
    """The bot as ``viewer_id`` may see it, and whether the viewer owns it.

    Anyone else sees a public or unlisted bot that moderation did not hide, of an owner
    whose account is active; every other bot is as unknown as a missing one
    (:class:`NotFound`, the same message).
    """
    bot = db.get(Bot, bot_id)
    if bot is not None and bot.owner_id == viewer_id:
        return bot, True
    shown = (
        bot is not None
        and bot.visibility in SHARED_VISIBILITIES
        and bot.hidden_at is None
        and db.scalar(select(User.id).where(User.id == bot.owner_id, owner_is_active())) is not None
    )
    if bot is None or not shown:
        raise NotFound("No bot with that id.")
    return bot, False


def community_bot(viewer_id: uuid.UUID, bot_id: uuid.UUID) -> tuple[Bot, bool]:
    """The bot as ``viewer_id`` may star it, comment on it or read its comments.

    Stricter than :func:`viewable_bot`: besides the owner, only a **public** bot qualifies.
    An unlisted bot is seen by whoever has its id, but the community is for bots shown to
    everyone, so for anyone else it is as unknown as a missing one (docs/community.md).
    """
    bot, mine = viewable_bot(viewer_id, bot_id)
    if not mine and bot.visibility != "public":
        raise NotFound("No bot with that id.")
    return bot, mine


def search_bots(owner_id: uuid.UUID, q: str | None, status: str | None) -> Select[Bot]:
    """The owner's bots, newest first, filtered by name text and status."""
    stmt = select(Bot).where(Bot.owner_id == owner_id).order_by(Bot.created_at.desc(), Bot.id)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        stmt = stmt.where(func.lower(Bot.name).like(f"%{escaped}%"))
    if status:
        stmt = stmt.where(Bot.status == status)
    return stmt


def _apply(bot: Bot, fields: dict[str, Any]) -> None:
    if "symbol" in fields or "timeframe" in fields:
        instrument = get_instrument(fields.get("symbol") or bot.instrument.symbol)
        timeframe = fields.get("timeframe") or bot.timeframe
        if timeframe not in instrument.timeframes():
            raise Invalid(
                f"{instrument.symbol} trades on {', '.join(instrument.timeframes())}.",
                {"json": {"timeframe": [f"{instrument.symbol} has no {timeframe} candles."]}},
            )
        bot.instrument, bot.timeframe = instrument, timeframe
    if "strategy" in fields:
        bot.strategy = validate_strategy(fields["strategy"])
    if "risk" in fields:
        bot.risk = validate_risk(merge_risk(bot.risk, fields["risk"]))
    for key in (
        "name",
        "description",
        "initial_capital",
        "fee",
        "slippage_bps",
        "schedule",
        "visibility",
    ):
        if key in fields:
            setattr(bot, key, fields[key])


def _check_unique_name(bot: Bot) -> None:
    """:class:`Conflict` if another bot of the owner has this name (the unique key backs it)."""
    with db.no_autoflush:
        taken = db.scalar(
            select(Bot.id).where(
                Bot.owner_id == bot.owner_id, Bot.name == bot.name, Bot.id != bot.id
            )
        )
    if taken is not None:
        raise Conflict(f"You already have a bot named {bot.name!r}.")


def create_bot(owner_id: uuid.UUID, fields: dict[str, Any]) -> Bot:
    """Validate and add a new ``draft`` bot (``symbol`` and ``strategy`` are required)."""
    bot = Bot(id=uuid.uuid4(), owner_id=owner_id, status="draft")
    bot.risk = validate_risk({})
    _apply(bot, fields)
    _check_unique_name(bot)
    db.add(bot)
    db.flush()
    return bot


def update_bot(bot: Bot, fields: dict[str, Any]) -> Bot:
    """Change the given fields (status is not among them: lifecycle actions own it).

    Raises :class:`Conflict` for a trading field of a running or paused bot: its live
    run keeps the settings it started with.
    """
    if bot.status in ACTIVE_BOT_STATUSES:
        frozen = [key for key in TRADING_FIELDS if key in fields]
        if frozen:
            raise Conflict(
                f"Stop the bot before changing how it trades ({', '.join(frozen)}); "
                "name, description and schedule stay editable."
            )
    _apply(bot, fields)
    _check_unique_name(bot)
    db.flush()
    return bot


def public_bots_of(owner_id: uuid.UUID) -> list[Bot]:
    """The owner's public bots with a live run (running or paused), newest first.

    A bot hidden by moderation (``hidden_at``) is left out.
    """
    return list(
        db.scalars(
            select(Bot)
            .where(
                Bot.owner_id == owner_id,
                Bot.visibility == "public",
                Bot.status.in_(ACTIVE_BOT_STATUSES),
                Bot.hidden_at.is_(None),
            )
            .order_by(Bot.created_at.desc(), Bot.id)
        )
    )


def delete_bot(bot: Bot) -> None:
    """Delete a bot that is not running; its backtests stay, with their snapshots."""
    if bot.status in ACTIVE_BOT_STATUSES:
        raise Conflict("Stop the bot before deleting it.")
    db.delete(bot)
    db.flush()
