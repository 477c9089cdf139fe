"""Per-owner quotas (running bots, queued backtests), checked under the owner's row lock."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from models.db import session as db
from models.errors import QuotaExceeded
from models.identity.tables import User


def lock_owner(owner_id: uuid.UUID) -> None:
    """Lock the owner's row until the transaction ends.

    Every quota-checked action takes this lock first, so two concurrent requests of one
    user run one after the other and cannot both squeeze under a limit. Taking it again
    in the same transaction is free.
    """
    db.execute(select(User.id).where(User.id == owner_id).with_for_update())


def enforce_quota(
    owner_id: uuid.UUID,
    model: Any,
    statuses: tuple[str, ...],
    limit: int,
    *,
    what: str,
    advice: str,
) -> None:
    """Raise :class:`QuotaExceeded` when the owner has ``limit`` ``model`` rows in ``statuses``.

    ``model`` has ``owner_id`` and ``status`` columns (bots, backtests). The message reads
    "You already have {n} {what}, your limit; {advice}".
    """
    lock_owner(owner_id)
    counted = select(func.count()).where(model.owner_id == owner_id, model.status.in_(statuses))
    used = int(db.scalar(counted) or 0)
    if used >= limit:
        raise QuotaExceeded(f"You already have {used} {what}, your limit; {advice}")
