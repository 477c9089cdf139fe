"""The seed's demo track records: live runs started in the past, replayed over stored candles."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from models.seed import seed_market, seed_world
from models.seed_tracks import DAY_MS as DAY
from models.seed_tracks import DEMO_TRACKS, seed_track_records
from workers.demo import build_track_records
from workers.ticks import tick_bots

MINUTE = 60_000
NOW = 1_767_225_600_000 + 37 * MINUTE  # 2026-01-01T00:37Z: mid-hour, the last 1h bar partial
STEP = {"15m": 15 * MINUTE, "1h": 60 * MINUTE, "4h": 240 * MINUTE}
# Closed trades of each record at NOW: what the engine made of the synthetic candles
# (deterministic for the pinned numpy). Designed: the BTC records run 100+ days with
# 15-90 trades; the others run 9-27 days; two are 2 days old (too young for a board),
# two have only 3 trades, and "BTC trend rider (copy)" repeats carol's configuration.
TRADES = {
    "AAPL dips": 3,
    "AAPL trend (SMA 10/40)": 10,
    "BTC Donchian breakout": 38,
    "BTC EMA 12/26 long-short": 52,
    "BTC MACD swing (4h)": 31,
    "BTC RSI dips": 15,
    "BTC bands both ways": 88,
    "BTC momentum rules": 57,
    "BTC trend rider (SMA 10/30)": 47,
    "BTC trend rider (copy)": 18,
    "ETH RSI dips (15m)": 6,
    "ETH bands": 10,
    "ETH fresh start (bands)": 2,
    "ETH trend (SMA 20/50)": 5,
    "EUR-USD EMA cross": 10,
    "EUR-USD bands": 24,
    "GBP-USD RSI": 3,
    "GBP-USD SMA 5/20": 11,
    "SOL Donchian": 13,
    "SOL MACD": 12,
    "SOL fresh start (SMA 5/20)": 7,
    "SOL momentum rules": 7,
    "SPY Donchian": 7,
    "SPY MACD": 17,
}
TABLES = ("bots", "bot_runs", "bot_equity", "bot_trades", "candles", "execution_logs")


def counts(db: Any) -> dict[str, int]:
    return {t: db.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}  # noqa: S608


@pytest.fixture
def seeded(app: Flask, db: Any) -> dict[str, Any]:
    """The seed's accounts, 30 days of history, the track records made and replayed."""
    seed_world()
    seed_market(NOW, 30)
    db.commit()
    made = seed_track_records(NOW)
    db.commit()
    done = build_track_records(made.catch_up)
    return {"made": made, "done": done}


def test_the_track_records_are_real_runs_with_the_designed_spans_and_trades(
    db: Any, seeded: dict[str, Any]
) -> None:
    made = seeded["made"]
    assert sorted(made.made) == sorted(demo.name for demo in DEMO_TRACKS) == sorted(TRADES)
    assert len(made.made) == 24
    # BTC-USD's history reaches back far enough for the 100-day records (110 days).
    first_btc = db.scalar(
        sa.text(
            "SELECT min(c.ts) FROM candles c JOIN instruments i ON i.id = c.instrument_id "
            "WHERE i.symbol = 'BTC-USD' AND c.timeframe = '1m'"
        )
    )
    assert int(first_btc.timestamp() * 1000) == NOW // MINUTE * MINUTE - 110 * DAY
    assert seeded["done"]["ticked"] == 24
    rows = db.execute(
        sa.text(
            """
            SELECT b.name, u.username, b.visibility, b.status, r.status, b.timeframe,
                   CAST(extract(epoch FROM r.started_at) * 1000 AS bigint), r.last_candle_ts,
                   (SELECT min(ts) FROM bot_equity e WHERE e.run_id = r.id),
                   (SELECT max(ts) FROM bot_equity e WHERE e.run_id = r.id),
                   (SELECT count(*) FROM bot_trades t WHERE t.run_id = r.id)
            FROM bots b JOIN users u ON u.id = b.owner_id JOIN bot_runs r ON r.bot_id = b.id
            """
        )
    ).all()
    by_name = {row[0]: row for row in rows}
    owners: dict[str, int] = {}
    for demo in DEMO_TRACKS:
        name, owner, visibility, status, run_status, tf, started, last, first_eq, last_eq, n = (
            by_name[demo.name]
        )
        owners[owner] = owners.get(owner, 0) + 1
        assert (owner, visibility, status, run_status) == (
            demo.owner,
            "public",
            "running",
            "running",
        )
        step = STEP[tf]
        assert started == NOW - demo.days * DAY
        # Every bar from the first one after the start to the last closed one, none partial.
        assert first_eq == -(-started // step) * step
        assert last_eq == last == (NOW // step) * step - step
        assert demo.days - 1 < (last_eq - first_eq) / DAY <= demo.days
        assert n == TRADES[name], name
    assert owners == dict.fromkeys(("carol", "dave", "erin", "frank", "grace", "heidi"), 4)
    long_records = [d for d in DEMO_TRACKS if d.days >= 100]
    assert len(long_records) == 6 and all(TRADES[d.name] >= 15 for d in long_records)
    assert sum(d.days <= 2 for d in DEMO_TRACKS) == 2
    configs = [(d.owner, d.symbol, d.timeframe, str(d.strategy), str(d.risk)) for d in DEMO_TRACKS]
    assert len(configs) - len(set(configs)) == 1  # one duplicate configuration


def test_a_second_seed_changes_nothing_and_the_runs_tick_on_as_live_runs(
    db: Any, seeded: dict[str, Any]
) -> None:
    before = counts(db)
    again = seed_track_records(NOW + 5 * MINUTE)
    db.commit()
    assert (again.made, again.catch_up, again.backfilled) == ([], [], {})
    assert counts(db) == before
    # The live path agrees that the runs are current: ticking them again does nothing.
    for group in seeded["made"].catch_up:
        assert tick_bots(group.run_ids, group.candle_ts)["skipped"] == group.run_ids
    assert counts(db) == before


def test_without_history_no_record_is_made(app: Flask, db: Any) -> None:
    seed_world()
    seed_market(NOW, 0)
    db.commit()
    made = seed_track_records(NOW)
    assert (made.made, made.catch_up, made.backfilled) == ([], [], {})


def test_a_short_history_stays_short_and_only_the_records_inside_it_are_made(
    app: Flask, db: Any
) -> None:
    seed_world()
    seed_market(NOW, 3)
    db.commit()
    made = seed_track_records(NOW)
    assert made.backfilled == {}  # --days 3 is what the operator asked for
    assert sorted(made.made) == sorted(d.name for d in DEMO_TRACKS if d.days <= 3)
    assert len(made.made) == 2
