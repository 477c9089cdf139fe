"""Account erasure: the hourly job that erases accounts whose deletion grace period is over."""

from __future__ import annotations

import structlog

from models.people.erasure import due_for_erasure, erase_account
from workers.exports import moment

log = structlog.get_logger(__name__)

# Accounts one pass erases; the next hourly pass takes the rest.
ACCOUNTS_PER_PASS = 100


def erase_due_accounts(now: str | None = None) -> int:
    """Erase every account due by ``now`` (ISO 8601; default the current time); the count.

    Idempotent and resumable: an account is stamped erased only once all its data is gone.
    """
    at = moment(now)
    erased = 0
    for user_id in due_for_erasure(at, ACCOUNTS_PER_PASS):
        if erase_account(user_id, at):
            erased += 1
            log.info("account_erased", user_id=str(user_id))
    return erased
