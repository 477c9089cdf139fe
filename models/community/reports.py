"""Reports: a user flags a bot, a comment or a user; moderators resolve or dismiss it.

A user reports only what they can see: anything else answers the same 404 as a missing
object, so reports cannot be used to probe ids (docs/community.md#moderation). One open
report per reporter and target: reporting it again while that one is open is a 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from models.bots.bots import viewable_bot
from models.community.tables import Comment, Report
from models.db import session as db
from models.errors import Conflict, Invalid, NotFound
from models.identity.tables import User
from models.people.profiles import NOT_FOUND as PROFILE_NOT_FOUND
from models.people.profiles import visible_profile

REPORT_REASONS = ("spam", "abuse", "scam", "impersonation", "inappropriate", "other")
CLOSED_STATUSES = ("resolved", "dismissed")
COMMENT_NOT_FOUND = "No comment with that id."
REPORT_NOT_FOUND = "No report with that id."
ALREADY_REPORTED = "You reported this already; moderators have your report."


def _own(what: str) -> Invalid:
    message = f"You cannot report {what}."
    return Invalid(message, {"json": {"target_id": [message]}})


def _bad_target_id() -> Invalid:
    message = "Not a valid id."
    return Invalid(message, {"json": {"target_id": [message]}})


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def visible_comment(viewer_id: uuid.UUID, comment_id: uuid.UUID) -> Comment:
    """A comment ``viewer_id`` can see: not deleted or hidden, on a bot they can see.

    Its author sees it while it is hidden too. :class:`NotFound` otherwise.
    """
    comment = db.get(Comment, comment_id)
    if comment is None or comment.deleted_at is not None:
        raise NotFound(COMMENT_NOT_FOUND)
    if comment.hidden_at is not None and comment.author_id != viewer_id:
        raise NotFound(COMMENT_NOT_FOUND)
    try:
        viewable_bot(viewer_id, comment.bot_id)
    except NotFound:
        raise NotFound(COMMENT_NOT_FOUND) from None
    return comment


def resolve_target(reporter_id: uuid.UUID, target_type: str, target: str) -> uuid.UUID:
    """The id of the object ``reporter_id`` reports, after checking they may see it.

    ``target`` is a uuid, or for a user a username too. Something the reporter cannot see
    is a :class:`NotFound` like a missing one; their own bot, comment or self is
    :class:`Invalid`.
    """
    target_id = _uuid(target)
    if target_type == "user":
        if target_id is not None:
            user = db.get(User, target_id)
            if user is None:
                raise NotFound(PROFILE_NOT_FOUND)
            target = user.username
        found = visible_profile(target, reporter_id)
        if found.id == reporter_id:
            raise _own("yourself")
        return found.id
    if target_id is None:
        raise _bad_target_id()
    if target_type == "bot":
        _bot, is_owner = viewable_bot(reporter_id, target_id)
        if is_owner:
            raise _own("your own bot")
        return target_id
    comment = visible_comment(reporter_id, target_id)
    if comment.author_id == reporter_id:
        raise _own("your own comment")
    return target_id


def file_report(
    reporter_id: uuid.UUID,
    target_type: str,
    target: str,
    reason: str,
    details: str | None,
) -> Report:
    """Report an object the reporter can see (flushed, not committed).

    :class:`Conflict` while the reporter's earlier report of it is open: the partial
    unique index ``uq_reports_open_per_reporter`` makes that hold under races too.
    """
    target_id = resolve_target(reporter_id, target_type, target)
    inserted = db.scalar(
        insert(Report)
        .values(
            id=uuid.uuid4(),
            reporter_id=reporter_id,
            target_type=target_type,
            target_id=target_id,
            reason=reason,
            details=details,
        )
        .on_conflict_do_nothing(
            index_elements=["reporter_id", "target_type", "target_id"],
            index_where=Report.status == "open",
        )
        .returning(Report.id)
    )
    if inserted is None:
        raise Conflict(ALREADY_REPORTED)
    return db.scalars(select(Report).where(Report.id == inserted)).one()


def get_report(report_id: uuid.UUID) -> Report:
    """A report by id (moderators only reach this); :class:`NotFound` if there is none."""
    report = db.get(Report, report_id)
    if report is None:
        raise NotFound(REPORT_NOT_FOUND)
    return report


def close_report(
    report_id: uuid.UUID, moderator_id: uuid.UUID, status: str, note: str, now: datetime
) -> Report:
    """Resolve or dismiss an open report; a closed one is final (:class:`Conflict`).

    One conditional UPDATE: of two moderators closing the same report at once, one wins
    and the other gets the 409.
    """
    if status not in CLOSED_STATUSES:
        raise ValueError(f"not a closing status: {status!r}")
    closed = db.scalar(
        update(Report)
        .where(Report.id == report_id, Report.status == "open")
        .values(status=status, resolved_by=moderator_id, resolved_at=now, resolution=note)
        .returning(Report.id)
    )
    if closed is None:
        report = get_report(report_id)
        raise Conflict(f"This report is already {report.status}.")
    fresh = select(Report).where(Report.id == closed).execution_options(populate_existing=True)
    return db.scalars(fresh).one()


@dataclass(frozen=True)
class QueueFilter:
    """What the moderation queue shows: one status, optionally one kind of target."""

    status: str = "open"
    target_type: str | None = None
    after: tuple[datetime, uuid.UUID] | None = None


def report_queue(where: QueueFilter, limit: int) -> list[Report]:
    """Reports with ``where.status``, oldest first (by creation, then id), after the cursor."""
    stmt = select(Report).where(Report.status == where.status)
    if where.target_type is not None:
        stmt = stmt.where(Report.target_type == where.target_type)
    if where.after is not None:
        stmt = stmt.where(tuple_(Report.created_at, Report.id) > tuple_(*where.after))
    return list(db.scalars(stmt.order_by(Report.created_at, Report.id).limit(limit)))


def open_report_counts(reports: list[Report]) -> dict[tuple[str, uuid.UUID], int]:
    """How many open reports each target of ``reports`` has (by anyone)."""
    keys = {(r.target_type, r.target_id) for r in reports}
    if not keys:
        return {}
    rows = db.execute(
        select(Report.target_type, Report.target_id, func.count())
        .where(
            Report.status == "open",
            tuple_(Report.target_type, Report.target_id).in_(sorted(keys)),
        )
        .group_by(Report.target_type, Report.target_id)
    )
    return {(t, i): int(n) for t, i, n in rows}
