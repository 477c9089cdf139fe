"""Blocks: who may reach whom, and notifications that a block silences."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from models.community.blocks import blocked_either, has_blocked, notify_unless_blocked
from models.community.tables import Block
from models.people.tables import Notification


def _count(db: Any, user_id: Any) -> int:
    return int(db.scalar(select(func.count()).where(Notification.user_id == user_id)))


def test_a_block_silences_the_blocked_users_notifications_only(db: Any, make_user: Any) -> None:
    alice, bob, carol = make_user(), make_user(), make_user()
    db.add(Block(blocker_id=alice.id, blocked_id=bob.id))
    db.flush()

    assert has_blocked(alice.id, bob.id) and not has_blocked(bob.id, alice.id)
    assert blocked_either(alice.id, bob.id) and blocked_either(bob.id, alice.id)
    assert not blocked_either(alice.id, carol.id)

    assert notify_unless_blocked(bob.id, alice.id, "user.followed", {"by": "bob"}) is None
    assert notify_unless_blocked(alice.id, alice.id, "user.followed", {"by": "alice"}) is None
    assert _count(db, alice.id) == 0
    sent = notify_unless_blocked(carol.id, alice.id, "user.followed", {"by": "carol"})
    assert sent is not None and sent.event == "user.followed"
    # The blocker can still reach the one they blocked.
    assert notify_unless_blocked(alice.id, bob.id, "user.followed", {"by": "alice"}) is not None
    assert _count(db, alice.id) == 1 and _count(db, bob.id) == 1
