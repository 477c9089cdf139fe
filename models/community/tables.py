"""Community tables: share links, stars, comments, follows, blocks and reports.

Counts (stars, forks, mirrors, followers) are never stored: they are counted from these
rows when read, so concurrent stars and unstars cannot leave a count wrong
(docs/community.md). Every table keys on the bot or user it belongs to and goes with it.
A mirror's link to its source, which decides how the mirror ticks, is a bots table
(models/bots/mirrors.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Base

SHARE_SCOPES = ("view", "view_performance")
REPORT_TARGETS = ("bot", "comment", "user")
REPORT_STATUSES = ("open", "resolved", "dismissed")


class ShareLink(Base):
    """A link that shows one bot to whoever holds its token, within its scope.

    Only the SHA-256 of the token is stored; the token itself is shown once, when the
    link is made. ``view`` shows the configuration and the performance, ``view_performance``
    the performance only.
    """

    __tablename__ = "share_links"
    __table_args__ = (
        CheckConstraint("scope IN ('view','view_performance')", name="scope_known"),
        Index("ix_share_links_bot_id_created_at", "bot_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    label: Mapped[str | None] = mapped_column(String(80))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    views: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class BotStar(Base):
    """A user's star on a bot (one per pair: starring twice is starring once)."""

    __tablename__ = "bot_stars"
    __table_args__ = (Index("ix_bot_stars_user_id_created_at", "user_id", "created_at"),)

    bot_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bots.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Comment(Base):
    """Plain text on a bot, or a reply to a top-level comment (one level of replies).

    Deleting keeps the row (``deleted_at``, body emptied) while it has replies, so a thread
    keeps its shape; moderation sets ``hidden_at``. Neither is shown to others.
    """

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_bot_id_created_at_id", "bot_id", "created_at", "id"),
        Index("ix_comments_parent_id_created_at_id", "parent_id", "created_at", "id"),
        Index("ix_comments_author_id", "author_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE")
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hidden_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Follow(Base):
    """``follower_id`` follows ``followee_id``: the followee's public activity is in their feed."""

    __tablename__ = "follows"
    __table_args__ = (
        CheckConstraint("follower_id <> followee_id", name="not_self"),
        Index("ix_follows_followee_id_created_at", "followee_id", "created_at"),
        Index("ix_follows_follower_id_created_at", "follower_id", "created_at"),
    )

    follower_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followee_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Block(Base):
    """``blocker_id`` blocked ``blocked_id``: no comments, follows or notifications from them."""

    __tablename__ = "blocks"
    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
        Index("ix_blocks_blocked_id", "blocked_id"),
    )

    blocker_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Report(Base):
    """Someone reported a bot, a comment or a user; moderators resolve or dismiss it."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint("target_type IN ('bot','comment','user')", name="target_known"),
        CheckConstraint("status IN ('open','resolved','dismissed')", name="status_known"),
        Index("ix_reports_status_created_at", "status", "created_at"),
        Index("ix_reports_target", "target_type", "target_id"),
        # One open report per reporter and target: reporting again is not another report.
        Index(
            "uq_reports_open_per_reporter",
            "reporter_id",
            "target_type",
            "target_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    reporter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[uuid.UUID] = mapped_column()
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
