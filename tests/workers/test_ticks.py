"""Live ticks: parity with a backtest, idempotent re-runs, one failing bot never fails others."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from engine.backtest import run_backtest
from engine.broker import BrokerState
from engine.candles import Candles
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from engine.strategies import Strategy, validate_strategy
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun, broker_config, current_run, pause_bot, start_bot
from models.bots.ticks import BotEquity, BotTrade, run_equity, run_span, run_trades
from models.identity.tables import User
from models.market.candles import read_candles
from models.trades import TRADE_COLUMNS
from settings import Settings
from tests.helpers import bearer, load_btc_history
from workers.main import build_worker
from workers.queues import BOTS, get_queue
from workers.ticks import Shared, tick_bots

HOUR = 3_600_000
DAY = 24 * HOUR
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPAN_START = END - 12 * DAY
# Half an hour into a bar: trading starts at the next bar of the 1h grid.
STARTED_AT = datetime.fromtimestamp((SPAN_START + HOUR // 2) / 1000, UTC)

SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}
RULES = {
    "rules": {
        "entry": {
            "all": [
                {
                    "op": "crosses_above",
                    "left": {"ind": "ema", "period": 5},
                    "right": {"ind": "ema", "period": 30},
                },
                {"op": "<", "left": {"ind": "rsi", "period": 14}, "right": {"const": 75}},
            ]
        },
        "exit": {
            "op": "crosses_below",
            "left": {"ind": "ema", "period": 5},
            "right": {"ind": "ema", "period": 30},
        },
    }
}
COSTS = {
    "symbol": "BTC-USD",
    "timeframe": "1h",
    "initial_capital": 10_000.0,
    "fee": 0.001,
    "slippage_bps": 0.0,
}
RULES_RISK = {"stop_loss": 0.004, "direction": "long_only"}
EPOCH_BARS = Settings().bot_epoch_bars
EPOCH_MS = EPOCH_BARS * HOUR


@pytest.fixture
def market(db: Any) -> None:
    load_btc_history(SPAN_START - 3 * DAY, END)
    db.commit()


@pytest.fixture
def runs(db: Any, market: None, make_user: Callable[..., Any]) -> list[BotRun]:
    """Two running bots of one owner, started at ``STARTED_AT``: an SMA crossover and rules."""
    owner = make_user()
    bots = [
        create_bot(
            owner.id,
            {"name": "sma", "strategy": SMA, **COSTS},
        ),
        create_bot(
            owner.id,
            {
                "name": "rules",
                "strategy": RULES,
                "risk": RULES_RISK,
                **COSTS,
                "slippage_bps": 3,
            },
        ),
    ]
    result = []
    for bot in bots:
        start_bot(owner.id, bot.id, limit=10, now=STARTED_AT)
        run = current_run(bot)
        assert run is not None
        result.append(run)
    db.commit()
    return result


def ids(runs: list[BotRun]) -> list[str]:
    return [str(run.id) for run in runs]


def replay(runs: list[BotRun], start: int, stop: int) -> None:
    """Tick every hourly candle in [start, stop), one call per candle, as the dispatcher would."""
    for ts in range(start, stop, HOUR):
        outcome = tick_bots(ids(runs), ts)
        assert outcome["failed"] == [], outcome


def snapshot(db: Any, run_id: uuid.UUID) -> tuple[Any, ...]:
    run = db.scalar(
        sa.select(BotRun).where(BotRun.id == run_id).execution_options(populate_existing=True)
    )
    trades = db.scalar(sa.select(sa.func.count()).where(BotTrade.run_id == run_id))
    points = db.scalar(sa.select(sa.func.count()).where(BotEquity.run_id == run_id))
    return run.broker_state, run.last_candle_ts, run.consecutive_failures, trades, points


def assert_parity(db: Any, run: BotRun, trade_from: int) -> int:
    """The run's trades, equity and state equal a backtest from its anchor; returns #trades."""
    bot = db.get(Bot, run.bot_id)
    warmup = validate_strategy(bot.strategy).warmup
    anchor, first = run_span(run, "1h", warmup, EPOCH_BARS)
    # The span lies in one epoch of the grid, so one backtest from the anchor is the oracle.
    assert (
        run_span(run, "1h", warmup, EPOCH_BARS)[0]
        == (END - HOUR) // EPOCH_MS * EPOCH_MS - warmup * HOUR
    )
    assert first == trade_from
    rows = read_candles(bot.instrument_id, "1h", anchor, END, limit=10**6)
    expected = run_backtest(
        Candles.from_rows(rows), bot.strategy, bot.risk, broker_config(bot), trade_from_ms=first
    )
    want = [{k: r[k] for k in TRADE_COLUMNS} for r in expected.trades.records()]
    live = [{k: getattr(t, k) for k in TRADE_COLUMNS} for t in run_trades(run.id)]
    assert live == want, bot.name  # exact floats, not approximately
    points = run_equity(run.id)
    assert [ts for ts, _ in points] == expected.equity.ts.tolist()
    assert [value for _, value in points] == expected.equity.equity.tolist()
    db.refresh(run)
    assert run.broker_state == expected.state.as_dict()
    assert run.last_candle_ts == END - HOUR
    return len(want)


def test_a_replayed_span_gives_the_backtests_trades_and_equity(db: Any, runs: list[BotRun]) -> None:
    trade_from = SPAN_START + HOUR
    replay(runs, trade_from, END)
    assert [assert_parity(db, run, trade_from) >= 3 for run in runs] == [True, True]
    reasons = {t.exit_reason for t in run_trades(runs[1].id)}
    assert "stop_loss" in reasons, reasons


def test_catching_up_in_one_tick_equals_ticking_candle_by_candle(
    db: Any, runs: list[BotRun]
) -> None:
    replay(runs[:1], SPAN_START + HOUR, SPAN_START + 50 * HOUR)
    # One catch-up tick for both, every bar fresh (BOT_FRESH_BARS would drop the old signals).
    outcome = tick_bots(ids(runs), END - HOUR, fresh_bars=10**6)
    assert outcome["ticked"] == ids(runs)
    for run in runs:
        assert_parity(db, run, SPAN_START + HOUR)


def test_ticks_through_the_bots_queue_and_a_second_delivery_changes_nothing(
    app: Flask, db: Any, redis: Redis, runs: list[BotRun]
) -> None:
    first, last = SPAN_START + HOUR, SPAN_START + 40 * HOUR
    queue = get_queue(BOTS, redis)
    queue.enqueue(tick_bots, ids(runs), last)  # a catch-up: 40 candles in one tick
    assert build_worker(app, (BOTS,), simple=True).work(burst=True) is True
    before = [snapshot(db, run.id) for run in runs]
    assert [b[1] for b in before] == [last, last]
    assert [b[4] for b in before] == [40, 40]
    queue.enqueue(tick_bots, ids(runs), last)
    queue.enqueue(tick_bots, ids(runs), first)
    assert build_worker(app, (BOTS,), simple=True).work(burst=True) is True
    assert [snapshot(db, run.id) for run in runs] == before
    assert tick_bots(ids(runs), last) == {"ticked": [], "skipped": ids(runs), "failed": []}
    assert [snapshot(db, run.id) for run in runs] == before


def test_a_failing_bot_is_counted_and_never_fails_the_others(db: Any, runs: list[BotRun]) -> None:
    good, bad = runs
    ts = SPAN_START + 30 * HOUR
    db.execute(sa.update(BotRun).where(BotRun.id == bad.id).values(broker_state={"bogus": 1}))
    db.commit()
    outcome = tick_bots(ids(runs), ts)
    assert outcome == {"ticked": [str(good.id)], "skipped": [], "failed": [str(bad.id)]}
    good_state, bad_state = snapshot(db, good.id), snapshot(db, bad.id)
    assert good_state[1] == ts and good_state[4] == 30
    assert bad_state[1:] == (None, 1, 0, 0)
    failed = db.get(BotRun, bad.id)
    assert failed.error is not None and "TypeError" in failed.error
    tick_bots(ids(runs), ts + HOUR)
    assert snapshot(db, bad.id)[2] == 2
    # Repaired, the bot catches up and its failure count resets.
    fresh = BrokerState.start(broker_config(db.get(Bot, bad.bot_id))).as_dict()
    db.execute(sa.update(BotRun).where(BotRun.id == bad.id).values(broker_state=fresh))
    db.commit()
    assert tick_bots([str(bad.id)], ts + HOUR)["ticked"] == [str(bad.id)]
    repaired = db.scalar(
        sa.select(BotRun).where(BotRun.id == bad.id).execution_options(populate_existing=True)
    )
    assert repaired.consecutive_failures == 0 and repaired.error is None
    assert repaired.last_candle_ts == ts + HOUR


def test_paused_runs_and_unknown_ids_are_skipped(db: Any, runs: list[BotRun]) -> None:
    sma, rules = runs
    bot = db.get(Bot, sma.bot_id)
    pause_bot(bot.owner_id, bot.id, now=STARTED_AT)
    db.commit()
    before = snapshot(db, sma.id)
    outcome = tick_bots([*ids(runs), str(uuid.uuid4())], SPAN_START + 10 * HOUR)
    assert outcome["ticked"] == [str(rules.id)]
    assert outcome["skipped"] == [str(sma.id), outcome["skipped"][1]]
    assert snapshot(db, sma.id) == before


def test_after_max_failures_the_run_and_its_bot_move_to_error(
    app: Flask, db: Any, client: FlaskClient, login: Callable[..., Any], runs: list[BotRun]
) -> None:
    good, bad = runs
    limit = app.extensions["botyard.settings"].bot_max_failures
    db.execute(sa.update(BotRun).where(BotRun.id == bad.id).values(broker_state={"bogus": 1}))
    db.commit()
    bot = db.get(Bot, bad.bot_id)
    owner = db.get(User, bot.owner_id)
    headers = bearer(login(owner.username)["access_token"])
    ts = SPAN_START + 10 * HOUR
    for n in range(1, limit):
        assert tick_bots(ids(runs), ts + n * HOUR)["failed"] == [str(bad.id)]
        assert snapshot(db, bad.id)[2] == n
        shown = client.get(f"/api/v1/bots/{bot.id}", headers=headers).json
        assert shown["status"] == "running" and "TypeError" in shown["last_error"]
    assert tick_bots(ids(runs), ts + limit * HOUR)["failed"] == [str(bad.id)]
    errored = db.scalar(
        sa.select(BotRun).where(BotRun.id == bad.id).execution_options(populate_existing=True)
    )
    assert errored.status == "error" and errored.stopped_at is not None
    assert errored.consecutive_failures == limit and "TypeError" in errored.error
    shown = client.get(f"/api/v1/bots/{bot.id}", headers=headers).json
    assert shown["status"] == "error" and shown["last_error"] == errored.error
    # An errored run is no longer ticked; the other bot never noticed.
    assert tick_bots(ids(runs), ts + (limit + 1) * HOUR)["skipped"] == [str(bad.id)]
    assert snapshot(db, bad.id)[2] == limit
    assert snapshot(db, good.id)[1] == ts + (limit + 1) * HOUR
    assert db.get(Bot, good.bot_id).status == "running"
    # Starting it again opens a fresh run; the bot's detail no longer shows the old error.
    restarted = client.post(f"/api/v1/bots/{bot.id}/start", headers=headers)
    assert restarted.status_code == 200, restarted.json
    assert restarted.json["run"]["error"] is None and restarted.json["run"]["id"] != str(bad.id)
    assert client.get(f"/api/v1/bots/{bot.id}", headers=headers).json["last_error"] is None


def test_rows_the_database_refuses_fail_only_their_own_run(db: Any, runs: list[BotRun]) -> None:
    good, bad = runs
    # A real refusal from Postgres for one run's equity rows (rolled back with the test).
    db.execute(
        sa.text(
            "CREATE FUNCTION refuse_equity() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.run_id = '{bad.id}' THEN RAISE EXCEPTION 'no equity for this run'; END IF; "
            "RETURN NEW; END $$"
        )
    )
    db.execute(
        sa.text(
            "CREATE TRIGGER refuse_equity BEFORE INSERT ON bot_equity "
            "FOR EACH ROW EXECUTE FUNCTION refuse_equity()"
        )
    )
    ts = SPAN_START + 10 * HOUR
    outcome = tick_bots(ids(runs), ts)
    assert outcome == {"ticked": [str(good.id)], "skipped": [], "failed": [str(bad.id)]}
    good_state, bad_state = snapshot(db, good.id), snapshot(db, bad.id)
    assert good_state[1] == ts and good_state[4] == 10
    assert bad_state[1:] == (None, 1, 0, 0)  # nothing of the refused run was kept
    failed = db.get(BotRun, bad.id)
    assert "no equity for this run" in failed.error


def test_jobs_of_one_candle_share_signal_computations_but_not_stale_tails() -> None:
    spec = next(s for s in SYNTHETIC_INSTRUMENTS if s.symbol == "BTC-USD")
    candles = SyntheticProvider().candles(spec, SPAN_START, SPAN_START + 400 * 60_000)
    sma = validate_strategy(SMA)
    computed: list[int] = []

    def counting(part: Candles) -> Any:
        computed.append(len(part))
        return sma.signals(part)

    strategy = Strategy(sma.spec, sma.warmup, counting)
    shared = Shared()
    pair = (1, "1m")
    shared.candles[pair] = candles
    signals_of = shared.signals_of(strategy, b"sma", pair)
    full = sma.signals(candles.slice(10, 400))
    last = signals_of(10, 399, 400)  # a tick on time: the last bar
    again = shared.signals_of(strategy, b"sma", pair)(10, 398, 400)  # another job, two bars
    assert computed == [390]  # one computation served both
    assert last.long_entry.tolist() == full.long_entry[-1:].tolist()
    assert again.long_exit.tolist() == full.long_exit[-2:].tolist()
    # A catch-up needs more than the kept tail: computed again, and right.
    long_ago = signals_of(10, 100, 400)
    assert computed == [390, 390]
    assert long_ago.short_entry.tolist() == full.short_entry[90:].tolist()
    assert len(long_ago) == 300 and Shared.TAIL_BARS < 300
