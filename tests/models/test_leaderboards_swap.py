"""The generation swap seen from other connections: old board or new board, never a mix.

These tests commit for real (a recompute in a thread and a reader on its own connection
cannot share the rolled-back test transaction), and delete what they made afterwards.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import text

from models import db as database
from models.identity.rbac import sync_roles
from models.leaderboards.generations import LOCK_KEY, Recomputed
from models.leaderboards.reads import Board, active_generation, board_rows
from models.market.instruments import forget_instrument_refs
from tests import leaderboard_world as world

WAIT_S = 30


@pytest.fixture
def committed(app: Flask, redis: Redis) -> Iterator[list[uuid.UUID]]:
    """The session bound to the real database; the users made are deleted afterwards."""
    settings = app.extensions["botyard.settings"]
    engine = database.configure(settings.database_url)
    database.session.remove()
    forget_instrument_refs()
    with engine.connect() as conn:
        had_instruments = bool(conn.execute(text("SELECT count(*) FROM instruments")).scalar())
        had_roles = bool(conn.execute(text("SELECT count(*) FROM roles")).scalar())
    sync_roles()
    database.session.commit()
    users: list[uuid.UUID] = []
    try:
        yield users
    finally:
        database.session.remove()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM leaderboard_generations"))
            conn.execute(text("DELETE FROM users WHERE id = ANY(:ids)"), {"ids": users})
            if not had_instruments:
                conn.execute(text("DELETE FROM instruments"))
            if not had_roles:
                conn.execute(text("DELETE FROM roles"))
                conn.execute(text("DELETE FROM permissions"))
        forget_instrument_refs()


def read_board() -> tuple[int | None, list[tuple[uuid.UUID, int]]]:
    """What a reader on its own connection sees: the active generation and its Sharpe board."""
    try:
        generation = active_generation()
        if generation is None:
            return None, []
        rows = board_rows(generation.id, Board("30d", "sharpe"), None, 100)
        return generation.id, [(row["bot_id"], row["rank"]) for row in rows]
    finally:
        database.session.remove()


def statuses() -> list[str]:
    try:
        rows = database.session.execute(
            text("SELECT status FROM leaderboard_generations ORDER BY id")
        )
        return [row.status for row in rows]
    finally:
        database.session.remove()


class Held:
    """A recompute in a thread that stops at each hook point until told to go on."""

    def __init__(self, points: tuple[str, ...] = ("built", "before_swap")) -> None:
        self.reached = {point: threading.Event() for point in points}
        self.go = {point: threading.Event() for point in points}
        self.result: list[Recomputed] = []
        self.error: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _hook(self, point: str) -> None:
        if point in self.reached:
            self.reached[point].set()
            assert self.go[point].wait(WAIT_S)

    def _run(self) -> None:
        try:
            self.result.append(world.run_recompute(top_n=0, hook=self._hook))
        except BaseException as exc:  # reported by finish()
            self.error.append(exc)
        finally:
            database.session.remove()

    def start(self) -> Held:
        self.thread.start()
        return self

    def wait(self, point: str) -> None:
        assert self.reached[point].wait(WAIT_S), f"the recompute never reached {point}"

    def release(self, point: str) -> None:
        self.go[point].set()

    def finish(self) -> Recomputed:
        for event in self.go.values():
            event.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive() and not self.error, self.error
        return self.result[0]


def make_world(users: list[uuid.UUID], sharpes: list[float]) -> list[Any]:
    world.instruments()
    user = world.owner()
    users.append(user.id)
    bots = [world.ranked(world.bot(user), sharpe=value) for value in sharpes]
    database.session.commit()
    return bots


def test_a_reader_sees_the_old_board_or_the_new_one_never_a_mix(
    committed: list[uuid.UUID],
) -> None:
    bots = make_world(committed, [6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    first = world.run_recompute(top_n=0)
    database.session.remove()
    old = (first.generation_id, [(b.id, rank) for rank, b in enumerate(bots, start=1)])
    assert read_board() == old
    # New figures reverse the order, and one more bot joins.
    for value, target in enumerate(bots, start=1):
        world.ranked(target, sharpe=float(value))
    newcomer = world.ranked(world.bot(_owner(committed[0])), sharpe=0.5)
    database.session.commit()
    database.session.remove()

    held = Held().start()
    held.wait("built")  # every new entry written, the build transaction still open
    assert read_board() == old
    assert statuses() == ["active"]  # the building generation is not even visible yet
    held.release("built")
    held.wait("before_swap")  # the new generation committed as building, not yet active
    assert read_board() == old
    assert statuses() == ["active", "building"]
    second = held.finish()
    new_order = [*reversed(bots), newcomer]
    assert read_board() == (
        second.generation_id,
        [(b.id, rank) for rank, b in enumerate(new_order, start=1)],
    )
    assert statuses() == ["superseded", "active"]


def _owner(user_id: uuid.UUID) -> Any:
    from models.identity.tables import User  # noqa: PLC0415 - test helper

    found = database.session.get(User, user_id)
    assert found is not None
    return found


def test_a_second_recompute_waits_for_the_first_and_activates_after_it(
    committed: list[uuid.UUID],
) -> None:
    make_world(committed, [3.0, 2.0, 1.0])
    database.session.remove()
    first = Held(points=("built",)).start()
    first.wait("built")  # holds the build lock
    second = Held(points=()).start()
    # Wait (with a deadline, no fixed sleep) until the second build queues on the lock.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        waiting = database.session.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = :key"
            ),
            {"key": LOCK_KEY},
        ).scalar()
        database.session.remove()
        if waiting:
            break
        time.sleep(0.01)
    else:
        pytest.fail("the second recompute never waited for the lock")
    assert statuses() == []  # neither build is visible: the first holds, the second waits
    done_first = first.finish()
    done_second = second.finish()
    assert done_first.activated and done_second.activated
    assert done_second.generation_id > done_first.generation_id
    assert read_board()[0] == done_second.generation_id
    assert statuses() == ["superseded", "active"]
