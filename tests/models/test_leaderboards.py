"""Leaderboard recompute on the real database: eligibility, dedupe, ranking, generations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from models.bots.runs import stop_bot
from models.bots.strategy_specs import strategy_family
from models.leaderboards.generations import build_generation, swap_generation
from models.leaderboards.reads import Board, active_generation, board_rows, bot_standing
from models.leaderboards.tables import LeaderboardEntry, LeaderboardExclusion, LeaderboardGeneration
from models.people.tables import Notification
from tests import leaderboard_world as world
from tests.leaderboard_world import NOW


@pytest.fixture
def market(db: Any) -> None:
    world.instruments()
    db.commit()


def exclusion(db: Any, generation_id: int, bot_id: Any) -> LeaderboardExclusion | None:
    return db.get(LeaderboardExclusion, (generation_id, bot_id))


def board(db: Any, generation_id: int, period: str = "30d", metric: str = "sharpe") -> list[Any]:
    return list(
        db.scalars(
            select(LeaderboardEntry)
            .where(
                LeaderboardEntry.generation_id == generation_id,
                LeaderboardEntry.period == period,
                LeaderboardEntry.metric == metric,
            )
            .order_by(LeaderboardEntry.rank)
        )
    )


def test_each_eligibility_rule_leaves_a_bot_out_with_its_reason(db: Any, market: None) -> None:
    alice, gone = world.owner(), world.owner()
    good = world.ranked(world.bot(alice), days=30, trades=10)
    private = world.ranked(world.bot(alice, visibility="private"))
    unlisted = world.ranked(world.bot(alice, visibility="unlisted"))
    stopped = world.ranked(world.bot(alice))
    stop_bot(alice.id, stopped.id, NOW)
    hidden = world.ranked(world.bot(alice))
    hidden.hidden_at = NOW
    inactive = world.ranked(world.bot(gone))
    gone.is_active = False
    short = world.ranked(world.bot(alice), days=3.5, trades=10)
    quiet = world.ranked(world.bot(alice), days=30, trades=4)
    both = world.ranked(world.bot(alice), days=2, trades=1)
    never = world.bot(alice)  # live, no snapshot yet
    db.commit()

    done = world.run_recompute()
    assert done.activated and done.bots_considered == 8  # public bots only

    def reasons(target: Any) -> list[str] | None:
        found = exclusion(db, done.generation_id, target.id)
        return list(found.reasons) if found else None

    assert reasons(good) is None
    assert reasons(private) is None and reasons(unlisted) is None  # never considered
    assert reasons(stopped) == ["no_live_run"]
    assert reasons(hidden) == ["hidden"]
    assert reasons(inactive) == ["owner_inactive"]
    assert reasons(short) == ["too_few_days"]
    assert reasons(quiet) == ["too_few_trades"]
    assert reasons(both) == ["too_few_days", "too_few_trades"]
    assert reasons(never) == ["no_snapshot"]
    detail = exclusion(db, done.generation_id, short.id).detail  # type: ignore[union-attr]
    assert detail == {"days_tracked": 3.5, "min_days": 7, "trades": 10, "min_trades": 5}
    on_board = {entry.bot_id for entry in board(db, done.generation_id)}
    assert on_board == {good.id}
    # Every board holds only the eligible bot: 4 periods x 4 metrics.
    assert done.entries == 16


def test_the_minimums_are_the_settings_given(db: Any, market: None) -> None:
    user = world.owner()
    target = world.ranked(world.bot(user), days=7, trades=5)  # exactly the minimums: in
    db.commit()
    assert world.run_recompute(min_days=7, min_trades=5).entries == 16
    done = world.run_recompute(min_days=8, min_trades=6)
    assert done.entries == 0
    assert exclusion(db, done.generation_id, target.id).reasons == [  # type: ignore[union-attr]
        "too_few_days",
        "too_few_trades",
    ]


def test_one_entry_per_configuration_per_owner_keeps_the_longest_record(
    db: Any, market: None
) -> None:
    alice, bob = world.owner(), world.owner()
    config = world.strategy(7)
    younger = world.ranked(world.bot(alice, config=config), days=40, sharpe=3.0)
    longest = world.ranked(world.bot(alice, config=config), days=60, sharpe=1.0)
    other_params = world.ranked(world.bot(alice, n=8), days=10)
    bobs_clone = world.ranked(world.bot(bob, config=config), days=20)  # another owner: counts
    # Same length of record: the older bot stays.
    older = world.ranked(world.bot(alice, n=9, created=NOW - timedelta(days=300)), days=30)
    newer = world.ranked(world.bot(alice, config=world.strategy(9)), days=30)
    # A duplicate of a bot that is itself left out is not a duplicate: it stays.
    hidden_original = world.ranked(world.bot(bob, n=11), days=90)
    hidden_original.hidden_at = NOW
    kept_copy = world.ranked(world.bot(bob, n=11), days=30)
    db.commit()

    done = world.run_recompute()
    duplicates = {
        row.bot_id: row.detail["duplicate_of"]
        for row in db.scalars(
            select(LeaderboardExclusion).where(
                LeaderboardExclusion.generation_id == done.generation_id
            )
        )
        if "duplicate" in row.reasons
    }
    assert duplicates == {younger.id: str(longest.id), newer.id: str(older.id)}
    ranked_ids = {entry.bot_id for entry in board(db, done.generation_id, "all", "sharpe")}
    assert ranked_ids == {longest.id, other_params.id, bobs_clone.id, older.id, kept_copy.id}


def test_configurations_compare_as_json_values_and_families_come_from_the_template(
    db: Any, market: None
) -> None:
    alice = world.owner()
    first = world.ranked(world.bot(alice, n=3), days=50)
    # The same values spelled differently (key order, 120 as 120.0) are the same configuration.
    same = world.ranked(world.bot(alice, n=4), days=20)
    same.strategy = {"params": {"slow": 103.0, "fast": 5}, "template": "sma_crossover"}
    assert first.strategy == {"template": "sma_crossover", "params": {"fast": 5, "slow": 103}}
    # Another risk, timeframe or symbol is another configuration.
    riskier = world.ranked(world.bot(alice, n=3), days=20)
    riskier.risk = {"stop_loss_pct": 5}
    other_symbol = world.ranked(world.bot(alice, n=3, symbol="ETH-USD"), days=20)
    rules = world.ranked(world.bot(alice, n=30), days=20)
    rules.strategy = {"rules": {"entry": {"ref": 1}, "exit": {"ref": 2}}}
    db.commit()

    done = world.run_recompute()
    excluded = exclusion(db, done.generation_id, same.id)
    assert excluded is not None and excluded.reasons == ["duplicate"]
    assert excluded.detail["duplicate_of"] == str(first.id)
    entries = {e.bot_id: e for e in board(db, done.generation_id, "all", "sharpe")}
    assert set(entries) == {first.id, riskier.id, other_symbol.id, rules.id}
    assert entries[rules.id].strategy == "rules" == strategy_family(rules.strategy)
    assert entries[first.id].strategy == "sma_crossover" == strategy_family(first.strategy)


def test_ties_break_by_track_length_then_age_then_id(db: Any, market: None) -> None:
    user = world.owner()
    base = NOW - timedelta(days=200)
    short_old = world.ranked(world.bot(user, created=base), days=20, sharpe=1.5)
    long_new = world.ranked(world.bot(user, created=base + timedelta(days=50)), days=40, sharpe=1.5)
    same_a = world.ranked(world.bot(user, created=base + timedelta(days=10)), days=20, sharpe=1.5)
    same_b = world.ranked(world.bot(user, created=base + timedelta(days=10)), days=20, sharpe=1.5)
    best = world.ranked(world.bot(user), days=8, sharpe=2.5)
    nan = world.ranked(world.bot(user), days=30, sharpe=float("nan"))
    none = world.ranked(world.bot(user), days=30, sharpe=None)
    db.commit()
    first, second = world.run_recompute(), world.run_recompute()
    low, high = sorted([same_a.id, same_b.id])
    expected = [best.id, long_new.id, short_old.id, low, high]
    for done in (first, second):
        entries = board(db, done.generation_id, "all", "sharpe")
        assert [e.bot_id for e in entries] == expected
        assert [e.rank for e in entries] == [1, 2, 3, 4, 5]
    # Not on the Sharpe boards without a finite Sharpe, but on the others.
    returns = {e.bot_id for e in board(db, second.generation_id, "all", "return")}
    assert nan.id in returns and none.id in returns


def test_components_hold_what_the_entry_was_ranked_on(db: Any, market: None) -> None:
    user = world.owner()
    target = world.ranked(world.bot(user), days=12.5, trades=9, sharpe=1.25, psr=0.8)
    world.snapshot(target, "7d", days=7, trades=3, total_return=0.02, sharpe=0.5, calmar=None)
    db.commit()
    done = world.run_recompute()
    (entry,) = board(db, done.generation_id, "7d", "return")
    assert entry.score == 0.02
    assert entry.components == {
        "formula_version": "1",
        "metrics_version": "2",
        "days_tracked": 7.0,
        "trades": 3,
        "max_drawdown": -0.05,
        "total_return": 0.02,
        "sharpe": 0.5,
        "psr": 0.9,
        "calmar": None,
        "as_of": "2026-05-31T23:00:00+00:00",
    }
    assert board(db, done.generation_id, "7d", "calmar") == []  # null calmar: not ranked


def test_instrument_and_strategy_ranks_follow_the_same_order(db: Any, market: None) -> None:
    user = world.owner()
    specs = [
        ("BTC-USD", "sma_crossover", 5.0),
        ("ETH-USD", "sma_crossover", 4.0),
        ("BTC-USD", "ema_crossover", 3.0),
        ("ETH-USD", "ema_crossover", 2.0),
        ("BTC-USD", "sma_crossover", 1.0),
    ]
    bots = [world.ranked(world.bot(user, symbol=s, template=t), sharpe=v) for s, t, v in specs]
    db.commit()
    done = world.run_recompute()
    entries = board(db, done.generation_id, "30d", "sharpe")
    assert [e.bot_id for e in entries] == [b.id for b in bots]
    assert [(e.instrument, e.instrument_rank) for e in entries] == [
        ("BTC-USD", 1),
        ("ETH-USD", 1),
        ("BTC-USD", 2),
        ("ETH-USD", 2),
        ("BTC-USD", 3),
    ]
    assert [(e.strategy, e.strategy_rank) for e in entries] == [
        ("sma_crossover", 1),
        ("sma_crossover", 2),
        ("ema_crossover", 1),
        ("ema_crossover", 2),
        ("sma_crossover", 3),
    ]
    both = board_rows(
        done.generation_id, Board("30d", "sharpe", "BTC-USD", "sma_crossover"), None, 10
    )
    assert [(r["bot_id"], r["board_rank"]) for r in both] == [(bots[0].id, 1), (bots[4].id, 2)]


def test_previous_rank_comes_from_the_generation_before(db: Any, market: None) -> None:
    user = world.owner()
    a = world.ranked(world.bot(user), sharpe=2.0)
    b = world.ranked(world.bot(user), sharpe=1.0)
    db.commit()
    first = world.run_recompute()
    assert [e.previous_rank for e in board(db, first.generation_id)] == [None, None]
    world.ranked(b, sharpe=3.0)
    c = world.ranked(world.bot(user), sharpe=0.5)
    db.commit()
    second = world.run_recompute()
    entries = board(db, second.generation_id)
    assert [(e.bot_id, e.rank, e.previous_rank) for e in entries] == [
        (b.id, 1, 2),
        (a.id, 2, 1),
        (c.id, 3, None),
    ]


def test_generations_swap_and_only_the_newest_are_kept(db: Any, market: None) -> None:
    user = world.owner()
    world.ranked(world.bot(user))
    db.commit()
    ids = [world.run_recompute(keep=3).generation_id for _ in range(5)]
    rows = db.scalars(select(LeaderboardGeneration).order_by(LeaderboardGeneration.id)).all()
    assert [(g.id, g.status) for g in rows] == [
        (ids[2], "superseded"),
        (ids[3], "superseded"),
        (ids[4], "active"),
    ]
    assert rows[-1].activated_at == NOW and rows[-1].formula_version == "1"
    assert active_generation().id == ids[4]  # type: ignore[union-attr]
    assert (
        db.scalar(
            select(LeaderboardEntry.generation_id).where(LeaderboardEntry.generation_id == ids[0])
        )
        is None
    )  # the entries of a deleted generation went with it


def test_an_older_generation_is_never_activated_over_a_newer_one(db: Any, market: None) -> None:
    user = world.owner()
    world.ranked(world.bot(user))
    db.commit()
    slow, slow_previous, _ = build_generation(NOW, 7, 5, None)
    fast = world.run_recompute()  # started later, finished first
    activated, _ = swap_generation(slow, slow_previous, NOW, 10)
    assert activated is False
    assert db.get(LeaderboardGeneration, slow.id).status == "superseded"
    assert active_generation().id == fast.generation_id  # type: ignore[union-attr]


def test_new_top_placings_notify_the_owner_once_per_generation(db: Any, market: None) -> None:
    alice, bob = world.owner(), world.owner()
    others = {"b": {"psr": 0.9, "calmar": 2.0}, "c": {"psr": 0.5, "calmar": 1.0}}
    a = world.ranked(world.bot(alice), sharpe=3.0, total_return=0.3, psr=0.99, calmar=3.0)
    b = world.ranked(world.bot(bob), sharpe=2.0, total_return=0.2, **others["b"])
    c = world.ranked(world.bot(bob), sharpe=1.0, total_return=0.1, **others["c"])
    db.commit()

    def told(user: Any) -> list[dict[str, Any]]:
        rows = db.scalars(
            select(Notification)
            .where(Notification.user_id == user.id, Notification.event == "leaderboard.placed")
            .order_by(Notification.id)
        )
        return [row.data for row in rows]

    first = world.run_recompute(top_n=2)
    assert first.notified == 2  # a and b: one notification each, all their boards in it
    (note,) = told(alice)
    assert note["bot_id"] == str(a.id) and note["best_rank"] == 1 and note["top_n"] == 2
    assert len(note["boards"]) == 16 and {x["rank"] for x in note["boards"]} == {1}
    assert [n["bot_id"] for n in told(bob)] == [str(b.id)]

    # Unchanged boards: nobody is new in the top 2, nobody is told again.
    assert world.run_recompute(top_n=2).notified == 0
    # c climbs into the top 2 on the Sharpe boards only; b drops out of them.
    world.ranked(c, sharpe=5.0, total_return=0.1, **others["c"])
    db.commit()
    third = world.run_recompute(top_n=2)
    assert third.notified == 1
    latest = told(bob)[-1]
    assert latest["bot_id"] == str(c.id) and latest["generation_id"] == third.generation_id
    assert {(x["metric"], x["rank"]) for x in latest["boards"]} == {("sharpe", 1)}
    assert len(latest["boards"]) == 4
    # Dropping out and coming back is a new placing again.
    world.ranked(b, sharpe=9.0, total_return=0.2, **others["b"])
    db.commit()
    assert world.run_recompute(top_n=2).notified == 1
    assert world.run_recompute(top_n=0).notified == 0


def test_bot_standing_reports_placings_or_reasons(db: Any, market: None) -> None:
    user = world.owner()
    placed = world.ranked(world.bot(user), sharpe=1.0)
    short = world.ranked(world.bot(user), days=2)
    db.commit()
    world.run_recompute()
    generation = active_generation()
    standing = bot_standing(generation, placed.id)
    assert standing.reasons == [] and len(standing.placings) == 16
    assert standing.placings[0] == {
        "period": "7d",
        "metric": "return",
        "rank": 1,
        "instrument_rank": 1,
        "strategy_rank": 1,
        "score": 0.1,
    }
    left_out = bot_standing(generation, short.id)
    assert left_out.placings == [] and left_out.reasons == ["too_few_days"]
    assert left_out.detail["days_tracked"] == 2 and left_out.detail["min_days"] == 7
    assert bot_standing(None, placed.id).generation_id is None


def test_a_failed_build_is_recorded_and_leaves_the_active_board(db: Any, market: None) -> None:
    user = world.owner()
    world.ranked(world.bot(user))
    db.commit()
    good = world.run_recompute()

    def explode(point: str) -> None:
        if point == "built":
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        world.run_recompute(hook=explode)
    statuses = [
        g.status
        for g in db.scalars(select(LeaderboardGeneration).order_by(LeaderboardGeneration.id))
    ]
    assert statuses == ["active", "failed"]
    assert active_generation().id == good.generation_id  # type: ignore[union-attr]


def test_a_new_partition_has_the_statistics_board_reads_plan_with(db: Any, market: None) -> None:
    user = world.owner()
    for i in range(3):
        world.ranked(world.bot(user), sharpe=float(i))
    db.commit()
    done = world.run_recompute()
    analysed = set(
        db.scalars(
            sa.text("SELECT attname FROM pg_stats WHERE tablename = :t"),
            {"t": f"leaderboard_entries_{done.generation_id}"},
        )
    )
    # Gathered by the build itself, before autovacuum could: a page read right after a
    # build planned without generation_id's statistics took 32 ms instead of under 2.
    assert {"generation_id", "period", "metric", "rank", "bot_id", "owner_id"} <= analysed
