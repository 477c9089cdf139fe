"""The dispatcher: candle-closed events become chunked tick jobs, once, through a consumer group."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from flask import Flask
from redis import Redis
from rq.job import Job

from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS
from models.bots.bots import create_bot
from models.bots.runs import current_run, pause_bot, start_bot
from models.market.instruments import sync_instruments
from settings import Settings
from workers import dispatch
from workers.dispatch import GROUP, dispatch_event, dispatch_once, ensure_group
from workers.feed import CANDLE_CLOSED_STREAM
from workers.main import build_worker
from workers.queues import BOTS, get_queue

MINUTE = 60_000
HOUR = 60 * MINUTE
END = 1_767_225_600_000  # 2026-01-01T00:00:00Z: closes every bucket up to 1d
EVENT = {"ts": END - MINUTE, "symbols": ["BTC-USD"], "timeframes": ["1m", "5m", "15m", "1h"]}
SMA = {"template": "sma_crossover", "params": {"fast": 5, "slow": 20}}
COSTS = {"strategy": SMA, "initial_capital": 10_000.0, "fee": 0.001, "slippage_bps": 0.0}
NOW = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture
def fleet(db: Any, make_user: Callable[..., Any]) -> dict[str, list[str]]:
    """Run ids by kind: five BTC-USD 1h, one BTC-USD 5m, one paused, one ETH-USD, one 4h."""
    sync_instruments(SYNTHETIC_INSTRUMENTS, provider="synthetic")
    owner = make_user()
    kinds = {
        "btc_1h": [("BTC-USD", "1h")] * 5,
        "btc_5m": [("BTC-USD", "5m")],
        "paused": [("BTC-USD", "1h")],
        "eth_1h": [("ETH-USD", "1h")],
        "btc_4h": [("BTC-USD", "4h")],
    }
    runs: dict[str, list[str]] = {}
    for kind, pairs in kinds.items():
        for n, (symbol, timeframe) in enumerate(pairs):
            bot = create_bot(
                owner.id,
                {"name": f"{kind}-{n}", "symbol": symbol, "timeframe": timeframe, **COSTS},
            )
            start_bot(owner.id, bot.id, limit=100, now=NOW)
            if kind == "paused":
                pause_bot(owner.id, bot.id, now=NOW)
            run = current_run(bot)
            assert run is not None
            runs.setdefault(kind, []).append(str(run.id))
    db.commit()
    return runs


def publish(redis: Redis, event: dict[str, Any]) -> None:
    """XADD the event as the feed does: id from the end of the closed minute."""
    redis.xadd(CANDLE_CLOSED_STREAM, {"data": orjson.dumps(event)}, id=f"{event['ts'] + MINUTE}-0")


def queued(redis: Redis) -> dict[str, list[Any]]:
    queue = get_queue(BOTS, redis)
    jobs = [Job.fetch(job_id, connection=redis) for job_id in queue.job_ids]
    return {job.id: list(job.args) for job in jobs}


def test_an_event_makes_one_job_per_chunk_with_its_runs_and_candle(
    redis: Redis, fleet: dict[str, list[str]]
) -> None:
    ensure_group(redis)
    publish(redis, EVENT)
    assert dispatch_once(redis, "one", chunk=2) == 1
    hourly = sorted(fleet["btc_1h"])
    assert queued(redis) == {
        f"tick-BTC-USD-1h-{END - HOUR}-0": [hourly[0:2], END - HOUR],
        f"tick-BTC-USD-1h-{END - HOUR}-1": [hourly[2:4], END - HOUR],
        f"tick-BTC-USD-1h-{END - HOUR}-2": [hourly[4:], END - HOUR],
        f"tick-BTC-USD-5m-{END - 5 * MINUTE}-0": [fleet["btc_5m"], END - 5 * MINUTE],
    }
    # Re-dispatching the same event (a replay, a second dispatcher) queues nothing new.
    assert dispatch_event(redis, EVENT, 2) == []
    assert len(get_queue(BOTS, redis)) == 4


def test_acked_entries_are_not_read_again(redis: Redis, fleet: dict[str, list[str]]) -> None:
    ensure_group(redis)
    publish(redis, EVENT)
    assert dispatch_once(redis, "one", chunk=200) == 1
    assert redis.xpending(CANDLE_CLOSED_STREAM, GROUP)["pending"] == 0
    assert dispatch_once(redis, "one", chunk=200) == 0
    assert dispatch_once(redis, "two", chunk=200) == 0
    assert len(get_queue(BOTS, redis)) == 2  # one 1h chunk, one 5m chunk


def test_an_unacked_entry_is_read_again_after_a_crash(
    redis: Redis, fleet: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_group(redis)
    publish(redis, EVENT)
    publish(redis, {**EVENT, "ts": END, "timeframes": ["1m"]})
    # A dispatcher read both entries and died before queueing or acking anything.
    redis.xreadgroup(GROUP, "dead", {CANDLE_CLOSED_STREAM: ">"}, count=1)
    assert dispatch_once(redis, "live", chunk=200) == 1  # only the entry nobody held
    assert len(get_queue(BOTS, redis)) == 0  # no 1m bots
    monkeypatch.setattr(dispatch, "CLAIM_IDLE_MS", 0)
    assert dispatch_once(redis, "live", chunk=200) == 1  # claimed from the dead consumer
    assert redis.xpending(CANDLE_CLOSED_STREAM, GROUP)["pending"] == 0
    assert len(get_queue(BOTS, redis)) == 2


def test_queued_ticks_run_on_the_bots_worker(
    app: Flask, redis: Redis, fleet: dict[str, list[str]]
) -> None:
    ensure_group(redis)
    publish(redis, EVENT)
    dispatch_once(redis, "one", chunk=200)
    assert build_worker(app, (BOTS,), simple=True).work(burst=True) is True
    job = Job.fetch(f"tick-BTC-USD-1h-{END - HOUR}-0", connection=redis)
    # No candles are stored here, so every run is skipped; what matters is the job ran.
    assert job.return_value() == {"ticked": [], "skipped": sorted(fleet["btc_1h"]), "failed": []}


def test_the_loop_stops_when_asked(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dispatch, "BLOCK_MS", 50)
    stop = [False]
    threading.Timer(0.2, lambda: stop.__setitem__(0, True)).start()
    dispatch.run(redis, Settings(env="test"), "one", stop)  # returns instead of blocking forever
    assert stop == [True]
    ensure_group(redis)  # the group exists already: a second call is a no-op
    groups = redis.xinfo_groups(CANDLE_CLOSED_STREAM)
    assert [g["name"] for g in groups] == [GROUP.encode()] and groups[0]["pending"] == 0


def test_consumers_of_dead_dispatchers_are_pruned_unless_they_hold_entries(
    redis: Redis,
) -> None:
    ensure_group(redis)
    publish(redis, EVENT)
    redis.xreadgroup(GROUP, "holding", {CANDLE_CLOSED_STREAM: ">"}, count=1)  # died holding one
    redis.xgroup_createconsumer(CANDLE_CLOSED_STREAM, GROUP, "idle")  # died with nothing
    redis.xgroup_createconsumer(CANDLE_CLOSED_STREAM, GROUP, "me")
    assert dispatch.prune_consumers(redis, keep="me") == []  # none idle for a day yet
    assert dispatch.prune_consumers(redis, keep="me", idle_ms=0) == ["idle"]
    left = {info["name"] for info in redis.xinfo_consumers(CANDLE_CLOSED_STREAM, GROUP)}
    assert left == {b"holding", b"me"}  # the test client returns bytes


def test_a_group_that_redis_lost_is_created_again_and_the_new_events_dispatched(
    redis: Redis, fleet: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "BLOCK_MS", 50)
    stop = [False]
    entry = f"{EVENT['ts'] + MINUTE}-0"

    seen: list[str | None] = []

    def flush_then_publish() -> None:
        try:
            wait(lambda: redis.exists(CANDLE_CLOSED_STREAM))  # the loop created its group
            redis.delete(CANDLE_CLOSED_STREAM)  # the stream and its group, as a FLUSHALL does
            publish(redis, EVENT)  # the feed's first event once Redis is back
            wait(lambda: seen.append(_delivered(redis)) or seen[-1] == entry)
        finally:
            stop[0] = True

    helper = threading.Thread(target=flush_then_publish)
    helper.start()
    dispatch.run(redis, Settings(env="test"), "one", stop)
    helper.join(10)
    assert seen[-1] == entry
    assert redis.xpending(CANDLE_CLOSED_STREAM, GROUP)["pending"] == 0
    assert f"tick-BTC-USD-1h-{END - HOUR}-0" in queued(redis)


def test_a_recreated_group_replays_at_most_the_newest_entries(redis: Redis) -> None:
    for n in range(dispatch.REPLAY_ENTRIES + 10):
        publish(redis, {**EVENT, "ts": END + n * MINUTE})
    assert ensure_group(redis, replay=dispatch.REPLAY_ENTRIES) is True
    assert ensure_group(redis, replay=dispatch.REPLAY_ENTRIES) is False  # exists now
    read: Any = redis.xreadgroup(GROUP, "one", {CANDLE_CLOSED_STREAM: ">"}, count=1000)
    ids = [entry_id.decode() for entry_id, _fields in read[0][1]]
    assert len(ids) == dispatch.REPLAY_ENTRIES
    assert ids[-1] == f"{END + (dispatch.REPLAY_ENTRIES + 10) * MINUTE}-0"
    redis.delete(CANDLE_CLOSED_STREAM)
    publish(redis, EVENT)
    assert ensure_group(redis, replay=dispatch.REPLAY_ENTRIES) is True
    read = redis.xreadgroup(GROUP, "one", {CANDLE_CLOSED_STREAM: ">"}, count=1000)
    assert len(read[0][1]) == 1  # a short stream is read from its start


def _delivered(redis: Redis) -> str | None:
    groups = redis.xinfo_groups(CANDLE_CLOSED_STREAM) if redis.exists(CANDLE_CLOSED_STREAM) else []
    if not groups or groups[0]["pending"]:
        return None
    return str(groups[0]["last-delivered-id"].decode())


def wait(check: Callable[[], Any], timeout: float = 30) -> None:
    """Poll ``check`` until it is truthy or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
