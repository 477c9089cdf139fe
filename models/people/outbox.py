"""After-commit side effects: queue delivery jobs and publish live events once rows are durable.

``notify()`` and the bot code stage work here inside the caller's transaction; when
that transaction commits, the process's relay (installed at start-up by the app and
the worker entry point, see workers/notify_relay.py) gets it. A rollback drops it. If the relay
cannot reach Redis, nothing is lost: the rows are in Postgres and the periodic
delivery sweep queues what is still pending.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.db import SessionFactory

log = structlog.get_logger(__name__)

OUTBOX_KEY = "botyard.outbox"
# A user's live events stream in Redis: ``events:user:<uuid>`` (GET /api/v1/me/events), and
# the one stream every user's events also go to, which the stream readers follow.
USER_EVENTS_PREFIX = "events:user:"
LIVE_EVENTS_KEY = "events:live"


def events_key(user_id: uuid.UUID | str) -> str:
    """The Redis stream of ``user_id``'s live events."""
    return f"{USER_EVENTS_PREFIX}{user_id}"


@dataclass
class Staged:
    """What one transaction asked to happen after it commits."""

    # (delivery id, channel): each channel has its own delivery job
    deliveries: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    # (user id, event kind, JSON-safe payload) for the user's live events stream
    events: list[tuple[uuid.UUID, str, dict[str, Any]]] = field(default_factory=list)


Relay = Callable[[Staged], None]
_relay: Relay | None = None


def set_relay(relay: Relay | None) -> Relay | None:
    """Install the process's relay (None: staged work is left to the sweep); returns the old one."""
    global _relay  # one relay per process, set by the entry point
    previous, _relay = _relay, relay
    return previous


def staged(session: Session) -> Staged:
    """The staging area of ``session``'s current transaction."""
    found: Staged | None = session.info.get(OUTBOX_KEY)
    if found is None:
        found = session.info[OUTBOX_KEY] = Staged()
    return found


def stage_event(session: Session, user_id: uuid.UUID, kind: str, data: dict[str, Any]) -> None:
    """Publish ``kind`` with ``data`` on the user's live events stream once this commits."""
    staged(session).events.append((user_id, kind, data))


@event.listens_for(SessionFactory, "after_commit")
def _after_commit(session: Session) -> None:
    work = session.info.pop(OUTBOX_KEY, None)
    if work is None or _relay is None:
        return
    try:
        _relay(work)
    except Exception:  # the rows are durable; the sweep picks up what the relay missed
        log.warning("outbox_relay_failed", exc_info=True)


@event.listens_for(SessionFactory, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if not session.in_transaction():
        session.info.pop(OUTBOX_KEY, None)
