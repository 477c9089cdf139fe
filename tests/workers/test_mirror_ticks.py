"""Mirrors tick right after their source, in its job, copying its fills sized to their capital.

Real Postgres and Redis; the source's ticks are queued as the dispatcher queues them (the
source's run alone) and run by a worker on the ``bots`` queue.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from models.bots.bots import Bot, create_bot
from models.bots.mirrors import BotMirror
from models.bots.runs import BotRun, current_run, running_runs_on, start_bot, stop_bot
from models.bots.ticks import BotTrade, run_equity, run_trades
from models.community.mirrors import create_mirror
from tests.api.conftest import BOT, END, HOUR, SPAN_START, STARTED_AT
from tests.helpers import load_btc_history
from workers.enqueue import enqueue_tick
from workers.main import build_worker
from workers.mirrors import pause_orphaned_mirrors
from workers.queues import BOTS
from workers.ticks import tick_bots

# Trades often on the synthetic BTC-USD hours: a signal exit at bar 9, a stop at bar 13.
SOURCE = {
    **BOT,
    "name": "source",
    "strategy": {"template": "sma_crossover", "params": {"fast": 2, "slow": 5}},
    "visibility": "public",
}
COSTS = {"fee": BOT["fee"], "slippage_bps": BOT["slippage_bps"]}


def at(hours: float) -> datetime:
    """The time ``hours`` after the span's first bar."""
    return datetime.fromtimestamp((SPAN_START + hours * HOUR) / 1000, UTC)


def bar(hours: int) -> int:
    return SPAN_START + hours * HOUR


@pytest.fixture
def source_run(db: Any, make_user: Callable[..., Any]) -> BotRun:
    """A public live bot, ticked (as a catch-up) through bar 4 of the span."""
    load_btc_history(SPAN_START - 2 * 24 * HOUR, END)
    owner = make_user()
    bot = create_bot(owner.id, SOURCE)
    start_bot(owner.id, bot.id, limit=10, now=STARTED_AT)
    run = current_run(bot)
    assert run is not None
    db.commit()
    assert tick_bots([str(run.id)], bar(4), fresh_bars=10**6)["ticked"] == [str(run.id)]
    return run


def mirror_of(db: Any, user: Any, source: BotRun, capital: float, hours: float) -> BotRun:
    bot, _ = create_mirror(
        user.id, source.bot_id, {"initial_capital": capital, **COSTS}, 10, at(hours)
    )
    db.commit()
    run = current_run(bot)
    assert run is not None
    return run


def tick_through_worker(app: Flask, redis: Redis, source: BotRun, hours: int) -> None:
    """The dispatcher's job for the candle: the source's run alone, run by a bots worker."""
    ts = bar(hours)
    assert enqueue_tick(redis, [str(source.id)], ts, f"tick-BTC-USD-1h-{ts}-0") is not None
    assert build_worker(app, (BOTS,), simple=True).work(burst=True) is True


def grid_floor(units: float, precision: int) -> float:
    """The mirror's sizing formula: units on the instrument's grid, rounding error forgiven."""
    scale = 10**precision
    return math.floor(units * scale + 1e-6) / scale


def test_mirrors_copy_their_source_candle_for_candle_sized_to_their_capital(
    app: Flask, db: Any, redis: Redis, make_user: Callable[..., Any], source_run: BotRun
) -> None:
    early = mirror_of(db, make_user(), source_run, 20_000.0, hours=5.5)  # trades from bar 6
    assert running_runs_on(["BTC-USD"], ["1h"]) == [("BTC-USD", "1h", source_run.id)]
    for hours in range(5, 15):
        if hours == 7:  # the source is long since bar 6's open: this one must wait
            late = mirror_of(db, make_user(), source_run, 5_000.0, hours=7.5)
        tick_through_worker(app, redis, source_run, hours)

    source_trades = [t for t in run_trades(source_run.id) if t.entry_ts >= bar(6)]
    assert [(t.entry_ts, t.exit_ts, t.exit_reason) for t in source_trades] == [
        (bar(6), bar(9), "signal"),
        (bar(13), bar(13), "stop_loss"),
    ]
    # Twice the capital, same costs, both flat at the same candle: exactly twice the units,
    # at the same prices, on the same candles, for twice the profit.
    early_trades = run_trades(early.id)
    assert len(early_trades) == len(source_trades)
    for mine, theirs in zip(early_trades, source_trades, strict=True):
        assert (mine.entry_ts, mine.exit_ts, mine.side, mine.exit_reason) == (
            theirs.entry_ts,
            theirs.exit_ts,
            theirs.side,
            theirs.exit_reason,
        )
        assert (mine.entry_price, mine.exit_price) == (theirs.entry_price, theirs.exit_price)
        assert mine.units == 2 * theirs.units
        assert mine.pnl == pytest.approx(2 * theirs.pnl, rel=1e-12)
    # The late mirror skipped the trade the source was in when it came, then followed:
    # units = source units x its cash / the source's cash before the entry.
    [late_trade] = run_trades(late.id)
    stop = source_trades[1]
    assert (late_trade.entry_ts, late_trade.exit_ts, late_trade.exit_reason) == (
        bar(13),
        bar(13),
        "stop_loss",
    )
    source_cash = dict(run_equity(source_run.id))[bar(12)]  # flat: equity is cash
    precision = db.get(Bot, source_run.bot_id).instrument.size_precision
    assert late_trade.units == grid_floor(stop.units * 5_000.0 / source_cash, precision)
    assert late_trade.exit_price == stop.exit_price

    # No history before each mirror came: equity from its first bar, one point per candle.
    assert [ts for ts, _ in run_equity(early.id)] == [bar(h) for h in range(6, 15)]
    assert [ts for ts, _ in run_equity(late.id)] == [bar(h) for h in range(8, 15)]
    assert run_equity(late.id)[:5] == [(bar(h), 5_000.0) for h in range(8, 13)]
    for run in (early, late):
        fresh = db.get(BotRun, run.id)
        assert fresh.status == "running" and fresh.last_candle_ts == bar(14)

    # A second delivery of the last candle adds nothing, to the source or its mirrors.
    rows = db.query(BotTrade).count()
    outcome = tick_bots([str(source_run.id)], bar(14))
    assert outcome["ticked"] == [] and len(outcome["skipped"]) == 3
    assert db.query(BotTrade).count() == rows

    # Trading is not a reason to pause: the sweep leaves the mirrors running.
    assert pause_orphaned_mirrors() == {"paused": 0, "failed": 0}
    assert {db.get(Bot, run.bot_id).status for run in (early, late)} == {"running"}


def test_a_mirror_given_to_a_tick_alone_is_left_to_its_source(
    db: Any, make_user: Callable[..., Any], source_run: BotRun
) -> None:
    mirror = mirror_of(db, make_user(), source_run, 10_000.0, hours=4.5)
    assert tick_bots([str(mirror.id)], bar(5)) == {
        "ticked": [],
        "skipped": [str(mirror.id)],
        "failed": [],
    }
    outcome = tick_bots([str(source_run.id)], bar(6))
    assert outcome == {"ticked": [str(source_run.id), str(mirror.id)], "skipped": [], "failed": []}
    assert [ts for ts, _ in run_equity(mirror.id)] == [bar(5), bar(6)]


def test_a_stopped_source_leaves_its_mirror_paused_with_the_reason(
    db: Any, make_user: Callable[..., Any], source_run: BotRun
) -> None:
    follower = make_user()
    mirror = mirror_of(db, follower, source_run, 10_000.0, hours=4.5)
    stop_bot(db.get(Bot, source_run.bot_id).owner_id, source_run.bot_id, at(5.2))
    db.commit()
    # A stop outside the API (the schedule's, say) is found by the periodic pass.
    assert pause_orphaned_mirrors(at(5.3)) == {"paused": 1, "failed": 0}
    assert pause_orphaned_mirrors(at(5.4)) == {"paused": 0, "failed": 0}
    paused = db.get(BotRun, mirror.id)
    assert paused.status == "paused" and paused.paused_at == at(5.3)
    assert db.get(Bot, mirror.bot_id).status == "paused"
    assert db.get(BotMirror, mirror.bot_id).paused_reason == "source_stopped"
