"""Mirrors: bots that follow another bot's trades instead of a strategy (docs/community.md).

The table lives with the bots because it decides how a bot ticks: the dispatcher leaves
mirrors out and their source's tick advances them (docs/execution.md, "Mirrors"). Making,
pausing and routing mirrors is the community area's (models/community/mirrors.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base


class BotMirror(Base):
    """A bot that follows another (public) bot's trades in its owner's own paper account.

    ``source_bot_id`` goes NULL when the source is deleted; the mirror then stays paused.
    ``paused_reason`` says why the mirror stopped following (source stopped, made
    private, hidden, deleted), NULL while it follows.
    """

    __tablename__ = "bot_mirrors"
    __table_args__ = (Index("ix_bot_mirrors_source_bot_id", "source_bot_id"),)

    bot_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    source_bot_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bots.id", ondelete="SET NULL")
    )
    paused_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
