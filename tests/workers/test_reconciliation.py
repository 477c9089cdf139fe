"""Reconciliation jobs on runs made by the real tick path: zero difference, exact differences.

The runs are produced by ``tick_bots`` over stored candles (a catch-up, then candle by
candle, as the dispatcher would). The expected differences after candles are rewritten
come from an independent backtest of the rewritten candles (the parity oracle of
tests/workers/test_ticks.py) and a trade matching written out here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from flask import Flask
from redis import Redis
from structlog.testing import capture_logs

from engine.backtest import run_backtest
from engine.candles import Candles
from engine.strategies import validate_strategy
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, broker_config, current_run, start_bot
from models.bots.ticks import run_equity, run_span, run_trades
from models.market.candles import read_candles
from models.performance.reconciliation import DAY_MS, window_start
from models.performance.reconciliation_store import latest_reports, stored_report
from models.performance.tables import RunReconciliation
from models.trades import TRADE_COLUMNS
from settings import Settings
from tests.helpers import load_btc_history
from workers.main import build_worker
from workers.queues import DEFAULT, get_queue
from workers.reconciliation import reconcile_public_bots, reconcile_run
from workers.schedule import PERIODIC, LeaderScheduler, periodic_jobs, reconcile
from workers.ticks import tick_bots

HOUR = 3_600_000
DAY = 24 * HOUR
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_START = END - 12 * DAY
STARTED_AT_MS = SPAN_START + HOUR // 2
# EMA rules: indicators seeded from the first bars, so the epoch anchors matter.
RULES = {
    "rules": {
        "entry": {
            "op": "crosses_above",
            "left": {"ind": "ema", "period": 3},
            "right": {"ind": "ema", "period": 12},
        },
        "exit": {
            "op": "crosses_below",
            "left": {"ind": "ema", "period": 3},
            "right": {"ind": "ema", "period": 12},
        },
    }
}
BOT = {
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "strategy": RULES,
    "risk": {"stop_loss": 0.01},
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 2.0,
}


@pytest.fixture
def market(db: Any) -> None:
    load_btc_history(SPAN_START - 4 * DAY, END + 3 * HOUR)
    db.commit()


@pytest.fixture
def epoch_bars(app: Flask) -> Iterator[Callable[[int], None]]:
    """Set BOT_EPOCH_BARS for the ticks and the jobs of a test (restored after it)."""
    original = app.extensions["botyard.settings"]

    def use(bars: int) -> None:
        app.extensions["botyard.settings"] = original.replace(bot_epoch_bars=bars)

    yield use
    app.extensions["botyard.settings"] = original


def live_run(db: Any, owner_id: uuid.UUID, name: str, visibility: str = "private") -> BotRun:
    """A bot started in the span and ticked through it by the real tick path."""
    bot = create_bot(owner_id, {"name": name, "visibility": visibility, **BOT})
    start_bot(owner_id, bot.id, limit=10, now=datetime.fromtimestamp(STARTED_AT_MS / 1000, UTC))
    run = current_run(bot)
    assert run is not None
    db.commit()
    # A catch-up with every bar fresh, then candle by candle as the dispatcher would.
    assert tick_bots([str(run.id)], END - 6 * HOUR, fresh_bars=10**6)["ticked"] == [str(run.id)]
    for ts in range(END - 5 * HOUR, END, HOUR):
        assert tick_bots([str(run.id)], ts)["ticked"] == [str(run.id)]
    db.refresh(run)
    assert run.last_candle_ts == END - HOUR
    return run


@pytest.fixture
def owner(db: Any, market: None, make_user: Callable[..., Any]) -> Any:
    return make_user()


def row_of(db: Any, run: BotRun, period: str = "all") -> RunReconciliation:
    row = stored_report(run.id, period)
    assert row is not None
    return row


def columns(row: RunReconciliation) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in sa.inspect(RunReconciliation).mapper.column_attrs}


def test_a_run_ticked_across_epochs_reconciles_with_zero_difference(
    db: Any, owner: Any, epoch_bars: Callable[[int], None]
) -> None:
    epoch_bars(50)  # the 12-day run crosses five epoch boundaries of its signals
    run = live_run(db, owner.id, "ema")
    trades, points = run_trades(run.id), run_equity(run.id)
    assert len(trades) >= 5
    assert reconcile_run(str(run.id), "all") == "done"
    row = row_of(db, run)
    assert (row.status, row.as_of_ts, row.error) == ("done", END - HOUR, None)
    assert (row.matched, row.missing, row.extra) == (len(trades), 0, 0)
    assert (row.max_price_diff, row.max_size_diff) == (0.0, 0.0)
    assert row.equity_max_abs_diff == row.equity_mean_abs_diff == row.equity_final_diff == 0.0
    assert row.diverged is False
    report = row.report
    assert report is not None
    assert report["differences"] == [] and report["differences_total"] == 0
    assert report["trades"] == {"run": len(trades), "backtest": len(trades)}
    assert report["equity"]["bars_compared"] == len(points)
    assert report["equity"]["run_only_bars"] == report["equity"]["backtest_only_bars"] == 0
    assert report["replay"]["trade_from_ts"] == SPAN_START + HOUR
    assert report["replay"]["epoch_bars"] == 50
    assert report["replay"]["final_state_equal"] is True
    assert latest_reports([run.id])[run.id].diverged is False


def rewrite_candles(db: Any, run: BotRun, first: int, last: int, factor: float) -> None:
    """Scale the stored 1h candles opening in [first, last] by ``factor`` (after the run ran)."""
    bot = db.get(Bot, run.bot_id)
    db.execute(
        sa.text(
            "UPDATE candles SET open = open * :f, high = high * :f, low = low * :f, "
            "close = close * :f WHERE instrument_id = :iid AND timeframe = '1h' "
            "AND ts >= to_timestamp(:a / 1000.0) AND ts <= to_timestamp(:b / 1000.0)"
        ),
        {"f": factor, "iid": bot.instrument_id, "a": first, "b": last},
    )
    db.commit()


def move_open(db: Any, run: BotRun, ts: int) -> None:
    """Move one stored 1h candle's open halfway to its close (signals, on closes, stay)."""
    bot = db.get(Bot, run.bot_id)
    db.execute(
        sa.text(
            "UPDATE candles SET open = (open + close) / 2 WHERE instrument_id = :iid "
            "AND timeframe = '1h' AND ts = to_timestamp(:ts / 1000.0)"
        ),
        {"iid": bot.instrument_id, "ts": ts},
    )
    db.commit()


def expected_diff(db: Any, run: BotRun, start: int | None = None) -> dict[str, Any]:
    """The figures a reconciliation must report, from an independent backtest of the candles."""
    bot = db.get(Bot, run.bot_id)
    warmup = validate_strategy(bot.strategy).warmup
    epoch = Settings().bot_epoch_bars
    anchor, first = run_span(run, "1h", warmup, epoch)
    # The whole run lies in one epoch, so one backtest from its anchor is the oracle.
    assert (END - HOUR) // (epoch * HOUR) == first // (epoch * HOUR)
    rows = read_candles(bot.instrument_id, "1h", anchor, END, limit=10**6)
    oracle = run_backtest(
        Candles.from_rows(rows), bot.strategy, bot.risk, broker_config(bot), trade_from_ms=first
    )
    since = start if start is not None else 0

    def key(t: dict[str, Any]) -> tuple[str, int, int]:
        return (t["side"], int(t["entry_ts"]), int(t["exit_ts"]))

    live = {
        key(t): t
        for t in ({k: getattr(r, k) for k in TRADE_COLUMNS} for r in run_trades(run.id))
        if t["exit_ts"] >= since
    }
    replay = {key(t): t for t in oracle.trades.records() if t["exit_ts"] >= since}
    both = live.keys() & replay.keys()
    price = [abs(live[k][f] - replay[k][f]) for k in both for f in ("entry_price", "exit_price")]
    size = [abs(live[k]["units"] - replay[k]["units"]) for k in both]
    points = [(ts, v) for ts, v in run_equity(run.id) if ts >= since]
    assert [ts for ts, _ in points] == [t for t in oracle.equity.ts.tolist() if t >= since]
    want = np.array([v for _, v in points]) - oracle.equity.equity[oracle.equity.ts >= since]
    changed = [k for k in both if any(live[k][f] != replay[k][f] for f in ("units", "pnl"))]
    return {
        "matched": len(both),
        "missing": len(replay.keys() - live.keys()),
        "extra": len(live.keys() - replay.keys()),
        "max_price_diff": max(price, default=0.0),
        "max_size_diff": max(size, default=0.0),
        "equity_max_abs_diff": float(np.abs(want).max()),
        "equity_mean_abs_diff": float(np.abs(want).mean()),
        "equity_final_diff": float(want[-1]),
        "changed_at_least": len(changed),
        "bars": len(points),
    }


FIGURES = (
    "matched",
    "missing",
    "extra",
    "max_price_diff",
    "max_size_diff",
    "equity_max_abs_diff",
    "equity_mean_abs_diff",
    "equity_final_diff",
)


def test_rewritten_candles_give_the_exact_differences(db: Any, owner: Any) -> None:
    run = live_run(db, owner.id, "ema")
    bot = db.get(Bot, run.bot_id)
    rewrite_candles(db, run, SPAN_START + 3 * DAY, SPAN_START + 3 * DAY + 5 * HOUR, 1.03)
    rewrite_candles(db, run, SPAN_START + 7 * DAY, SPAN_START + 7 * DAY + 2 * HOUR, 0.97)
    for trade in run_trades(run.id):  # entry fills of the last days move, not their signals
        if trade.entry_ts > SPAN_START + 9 * DAY:
            move_open(db, run, trade.entry_ts)
    want = expected_diff(db, run)
    assert want["missing"] + want["extra"] > 0  # the rewrite did change the trades
    assert want["max_price_diff"] > 0 and want["max_size_diff"] > 0
    with capture_logs() as logs:
        assert reconcile_run(str(run.id), "all") == "done"
    row = row_of(db, run)
    got = {name: getattr(row, name) for name in FIGURES}
    assert got == pytest.approx({name: want[name] for name in FIGURES}, rel=1e-12, abs=1e-9)
    assert row.diverged is True
    report = row.report
    assert report is not None
    kinds = [d["kind"] for d in report["differences"]]
    assert kinds.count("missing") == want["missing"] and kinds.count("extra") == want["extra"]
    assert kinds.count("changed") >= want["changed_at_least"]
    assert report["differences_total"] == len(kinds)
    assert report["equity"]["bars_compared"] == want["bars"]
    assert report["replay"]["final_state_equal"] is False
    for item in report["differences"]:
        assert (item["run"] is None) == (item["kind"] == "missing")
        assert (item["backtest"] is None) == (item["kind"] == "extra")
    diverged = [e for e in logs if e["event"] == "reconciliation_diverged"]
    assert len(diverged) == 1 and diverged[0]["log_level"] == "warning"
    assert (diverged[0]["bot_id"], diverged[0]["run_id"]) == (str(bot.id), str(run.id))
    assert latest_reports([run.id])[run.id].diverged is True


def test_a_catch_up_that_dropped_stale_signals_shows_as_missing_trades(db: Any, owner: Any) -> None:
    bot = create_bot(owner.id, {"name": "late", **BOT})
    start_bot(owner.id, bot.id, limit=10, now=datetime.fromtimestamp(STARTED_AT_MS / 1000, UTC))
    run = current_run(bot)
    assert run is not None
    db.commit()
    # The bot was down for days: one catch-up tick under the stale-bar policy (BOT_FRESH_BARS).
    assert tick_bots([str(run.id)], END - HOUR)["ticked"] == [str(run.id)]
    assert run_trades(run.id) == []
    want = expected_diff(db, run)
    assert want["missing"] >= 5 and want["extra"] == want["matched"] == 0
    assert reconcile_run(str(run.id), "all") == "done"
    row = row_of(db, run)
    got = {name: getattr(row, name) for name in FIGURES}
    assert got == pytest.approx({name: want[name] for name in FIGURES}, rel=1e-12, abs=1e-9)
    assert row.diverged is True
    assert row.report is not None
    assert [d["kind"] for d in row.report["differences"]] == ["missing"] * want["missing"]


def test_the_job_run_twice_stores_the_same_row(db: Any, owner: Any) -> None:
    run = live_run(db, owner.id, "ema")
    rewrite_candles(db, run, SPAN_START + 4 * DAY, SPAN_START + 4 * DAY + 3 * HOUR, 1.02)
    assert reconcile_run(str(run.id), "all") == "done"
    first = columns(row_of(db, run))
    with capture_logs() as logs:
        assert reconcile_run(str(run.id), "all") == "unchanged"
    assert columns(row_of(db, run)) == first
    assert not [e for e in logs if e["event"] == "reconciliation_diverged"]
    count = db.scalar(sa.select(sa.func.count()).where(RunReconciliation.run_id == run.id))
    assert count == 1


def test_a_period_restricts_the_comparison_to_its_window(db: Any, owner: Any) -> None:
    run = live_run(db, owner.id, "ema")
    # Candles rewritten on both sides of the 7-day window's start.
    start = window_start("7d", END - HOUR)
    assert start == (END - HOUR) // DAY_MS * DAY_MS - 6 * DAY
    rewrite_candles(db, run, SPAN_START + 2 * DAY, SPAN_START + 2 * DAY + 4 * HOUR, 1.03)
    rewrite_candles(db, run, start + DAY, start + DAY + 4 * HOUR, 0.97)
    for period, since in (("7d", start), ("all", None)):
        assert reconcile_run(str(run.id), period) == "done"
        row = row_of(db, run, period)
        want = expected_diff(db, run, since)
        got = {name: getattr(row, name) for name in FIGURES}
        assert got == pytest.approx({name: want[name] for name in FIGURES}, rel=1e-12, abs=1e-9)
        assert row.report is not None
        assert row.report["window"] == {"period": period, "start_ts": since, "end_ts": END - HOUR}
        assert row.report["equity"]["bars_compared"] == want["bars"]
    week, whole = row_of(db, run, "7d"), row_of(db, run, "all")
    assert week.report is not None and whole.report is not None
    assert week.report["equity"]["bars_compared"] == 7 * 24
    assert whole.report["equity"]["bars_compared"] == len(run_equity(run.id))
    # The replay itself still starts at the run's first bar.
    assert week.report["replay"] == whole.report["replay"]


def test_the_periodic_job_refreshes_public_bots_behind_their_last_candle(
    app: Flask, db: Any, redis: Redis, owner: Any
) -> None:
    public = live_run(db, owner.id, "public", visibility="public")
    private = live_run(db, owner.id, "private")
    assert reconcile_public_bots() == {"stale": 1, "queued": 1}
    assert row_of(db, public).status == "pending"
    assert reconcile_public_bots() == {"stale": 1, "queued": 0}  # its job is still waiting
    assert get_queue(DEFAULT, redis).count == 1
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    row = row_of(db, public)
    assert (row.status, row.as_of_ts, row.missing, row.extra) == ("done", END - HOUR, 0, 0)
    assert stored_report(private.id, "all") is None
    assert reconcile_public_bots() == {"stale": 0, "queued": 0}
    # A new candle: the report is behind again and is refreshed as of it.
    assert tick_bots([str(public.id)], END)["ticked"] == [str(public.id)]
    assert reconcile_public_bots() == {"stale": 1, "queued": 1}
    assert build_worker(app, (DEFAULT,), simple=True).work(burst=True) is True
    row = row_of(db, public)
    assert (row.status, row.as_of_ts, row.diverged) == ("done", END, False)
    assert row.matched == len(run_trades(public.id))


def test_the_periodic_job_takes_its_interval_from_the_settings(redis: Redis) -> None:
    (spec,) = [p for p in PERIODIC if p.func == "workers.reconciliation.reconcile_public_bots"]
    assert (spec.queue, spec.interval) == ("default", 3600)
    scheduler = LeaderScheduler(queue_name="default", connection=redis, interval=5, name="r")
    reconcile(scheduler, periodic_jobs(Settings(reconciliation_interval_minutes=15)))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert jobs[spec.job_id].meta["interval"] == 900
    counts = reconcile(scheduler, periodic_jobs(Settings(reconciliation_interval_minutes=15)))
    assert counts["replaced"] == 0
    assert reconcile(scheduler)["replaced"] == 1  # back to the default hour
