"""The daily digest: one email per user listing the events they chose to batch.

A periodic job (every ten minutes, workers/schedule.py) sends, from
``DIGEST_HOUR_UTC`` on, each user's ``digest`` deliveries made before today's cutoff
(today at that hour). What arrives after the cutoff waits for tomorrow's, so a user
gets at most one digest a day however often the job runs; a second run finds nothing
left. Rows stay locked from the query to the commit that marks them ``sent``, so two
runs never mail the same item.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import structlog
from flask import current_app

from models.db import session as db
from models.identity.tables import User
from models.people import deliveries
from models.people.preferences import effective_settings
from settings import Settings
from workers.event_mail import digest_line, render_digest
from workers.mail import send

log = structlog.get_logger(__name__)

USERS_PER_PASS = 500


def digest_cutoff(now: datetime, hour: int) -> datetime:
    """The latest digest time at or before ``now``: today at ``hour`` UTC, or yesterday's."""
    today = now.astimezone(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def _digest_one(user_id: uuid.UUID, cutoff: datetime, settings: Settings, now: datetime) -> str:
    """Send one user's digest; returns ``sent``, ``skipped`` or ``nothing``."""
    rows = deliveries.claim_digest(user_id, cutoff)
    if not rows:
        db.rollback()
        return "nothing"
    user = db.get(User, user_id)
    daily = effective_settings(user_id).get("email_digest") == "daily"
    if user is None or not deliveries.reachable(user) or not daily:
        # Turned off since (or the account is gone): these would wait forever.
        for delivery, _ in rows:
            deliveries.finish(delivery, "skipped", now, "digest off or account unreachable")
        db.commit()
        return "skipped"
    try:
        items = [
            (note.created_at, digest_line(note.event, note.data, settings.frontend_url))
            for _, note in rows
        ]
        message = render_digest(user.email, user.username, items, settings.frontend_url)
        send(message, settings.smtp_url, settings.mail_from)
    except Exception as exc:
        db.rollback()  # still "digest": the next pass tries again
        log.warning("digest_failed", user_id=str(user_id), error=type(exc).__name__)
        return "failed"
    for delivery, _ in rows:
        deliveries.finish(delivery, "sent", now, None)
    db.commit()
    return "sent"


def send_digests(now: datetime | None = None) -> dict[str, int]:
    """Mail every due daily digest; returns counts by outcome. ``now`` is for tests."""
    settings: Settings = current_app.extensions["botyard.settings"]
    now = now or datetime.now(UTC)
    cutoff = digest_cutoff(now, settings.digest_hour_utc)
    counts = {"sent": 0, "skipped": 0, "failed": 0, "nothing": 0}
    for user_id in deliveries.digest_owners(cutoff, USERS_PER_PASS):
        counts[_digest_one(user_id, cutoff, settings, now)] += 1
    log.info("digests_sent", **counts)
    return counts
