"""The bot dispatcher process: ``python -m workers.dispatch``.

It reads the feed's "candle closed" events from ``mkt:events:candle_closed`` through
the Redis consumer group ``dispatcher``, so several dispatchers share the stream
without handling an event twice. For each event it finds the running runs trading one
of its symbols on one of its closed timeframes and enqueues ``tick_bots`` on the
``bots`` queue in chunks of ``BOT_TICK_CHUNK``, one job id per chunk
(``tick-{symbol}-{timeframe}-{candle_ts}-{chunk}``), so the same batch is never queued
twice. An entry is acknowledged only after its jobs are queued; a dispatcher that
dies before that leaves the entry pending, and it is read again on restart (or claimed
by another dispatcher once idle for ``CLAIM_IDLE_MS``). See docs/execution.md.

Redis or Postgres going away never stops the process: it waits with backoff and goes on
(workers/outage.py). If Redis lost the group (a flush, a restart without persistence),
the next read fails with ``NOGROUP`` and the group is created again, starting at most
``REPLAY_ENTRIES`` entries back, so the events the feed announced since Redis came back
are dispatched too; anything older is the catch-up sweep's (docs/operations.md).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

import orjson
import structlog
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from sqlalchemy.exc import SQLAlchemyError

from models.bots.runs import running_runs_on
from models.db import session as db
from models.market.data import MINUTE_MS
from models.market.tables import TIMEFRAME_MS
from settings import Settings
from workers.context import create_worker_app
from workers.enqueue import enqueue_tick, tick_job_id
from workers.feed import CANDLE_CLOSED_STREAM
from workers.outage import Backoff, ServiceWatch, end_transaction
from workers.transient import backing_service

log = structlog.get_logger(__name__)

GROUP = "dispatcher"
BLOCK_MS = 5_000
READ_COUNT = 100
# An entry pending this long belongs to a dispatcher that died; another one takes it over.
CLAIM_IDLE_MS = 60_000
# A consumer idle this long with nothing pending is a dispatcher that is gone.
PRUNE_IDLE_MS = 24 * 3_600_000
# A group created again after Redis lost it replays this many entries at most (an hour of
# 1m events): after a flush they are all new; the sweep covers whatever is older.
REPLAY_ENTRIES = 60

Entry = tuple[str, dict[bytes, bytes]]


def ensure_group(redis: Redis, replay: int = 0) -> bool:
    """Create the consumer group (and the stream) if missing; True if it was created.

    A new group starts at the end of the stream, or ``replay`` entries before it: older
    events are the sweep's job, not a flood of ticks for a history the runs have no use for.
    """
    start = "$"
    if replay > 0:
        newest: Any = redis.xrevrange(CANDLE_CLOSED_STREAM, count=replay + 1)
        if len(newest) > replay:
            start = _text(newest[-1][0])  # delivery starts after this id
        elif newest:
            start = "0"
    try:
        redis.xgroup_create(CANDLE_CLOSED_STREAM, GROUP, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def closed_bucket_open(minute_ms: int, timeframe: str) -> int:
    """Open time (ms) of the ``timeframe`` bucket that the 1m candle at ``minute_ms`` closed."""
    return minute_ms + MINUTE_MS - TIMEFRAME_MS[timeframe]


def dispatch_event(redis: Redis, event: dict[str, Any], chunk: int) -> list[str]:
    """Enqueue the tick jobs of one "candle closed" event; returns the job ids newly queued."""
    rows = running_runs_on(list(event["symbols"]), list(event["timeframes"]))
    db.rollback()  # end the read; this process holds no transaction between events
    pairs: dict[tuple[str, str], list[str]] = {}
    for symbol, timeframe, run_id in rows:
        pairs.setdefault((symbol, timeframe), []).append(str(run_id))
    queued = []
    for (symbol, timeframe), run_ids in pairs.items():
        candle_ts = closed_bucket_open(int(event["ts"]), timeframe)
        for index, start in enumerate(range(0, len(run_ids), chunk)):
            job_id = tick_job_id(symbol, timeframe, candle_ts, index)
            if enqueue_tick(redis, run_ids[start : start + chunk], candle_ts, job_id):
                queued.append(job_id)
    return queued


def _entries(reply: Any) -> list[Entry]:
    return [(_text(entry_id), fields or {}) for entry_id, fields in reply]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _read(redis: Redis, consumer: str, block_ms: int | None) -> list[Entry]:
    """This consumer's unacked entries, then stale ones of dead consumers, else new ones."""
    mine: Any = redis.xreadgroup(GROUP, consumer, {CANDLE_CLOSED_STREAM: "0"}, count=READ_COUNT)
    pending = _entries(mine[0][1]) if mine else []
    if pending:
        return pending
    claimed = redis.xautoclaim(
        CANDLE_CLOSED_STREAM, GROUP, consumer, CLAIM_IDLE_MS, "0-0", count=READ_COUNT
    )
    if claimed[1]:
        return _entries(claimed[1])
    new: Any = redis.xreadgroup(
        GROUP, consumer, {CANDLE_CLOSED_STREAM: ">"}, count=READ_COUNT, block=block_ms
    )
    return _entries(new[0][1]) if new else []


def dispatch_once(redis: Redis, consumer: str, chunk: int, block_ms: int | None = None) -> int:
    """Handle one read of the stream, acking each entry once its jobs are queued.

    ``block_ms`` waits that long for new entries (None: do not wait). Returns how many
    entries were handled. An entry trimmed from the stream while pending has no fields
    and is simply acked.
    """
    entries = _read(redis, consumer, block_ms)
    for entry_id, fields in entries:
        if b"data" in fields:
            event = orjson.loads(fields[b"data"])
            queued = dispatch_event(redis, event, chunk)
            log.info("candle_dispatched", entry=entry_id, ts=event["ts"], jobs=len(queued))
        redis.xack(CANDLE_CLOSED_STREAM, GROUP, entry_id)
    return len(entries)


def prune_consumers(redis: Redis, keep: str, idle_ms: int = PRUNE_IDLE_MS) -> list[str]:
    """Remove consumers of dead dispatchers: idle for ``idle_ms`` and holding no entry.

    Every start adds a consumer named ``host-pid``; without pruning the group's list grows
    with every restart. A consumer still holding entries is kept: they are claimed first.
    """
    removed = []
    for info in redis.xinfo_consumers(CANDLE_CLOSED_STREAM, GROUP):
        name = _text(info["name"])
        if name != keep and int(info["pending"]) == 0 and int(info["idle"]) >= idle_ms:
            redis.xgroup_delconsumer(CANDLE_CLOSED_STREAM, GROUP, name)
            removed.append(name)
    if removed:
        log.info("dispatcher_consumers_pruned", count=len(removed))
    return removed


def run(redis: Redis, settings: Settings, consumer: str, stop: list[bool]) -> None:
    """Dispatch until ``stop[0]`` is set; each read blocks at most ``BLOCK_MS``.

    Redis or Postgres away: one ``service_unavailable`` line, waits with backoff, then one
    ``service_restored``. A missing group is created again. Any other Redis or database
    error is logged (``dispatch_failed``) and the loop goes on after a backoff: the
    entries it was handling stay pending and are read again.
    """
    watch = ServiceWatch("dispatcher")
    errors = Backoff()
    started = group_lost = False
    while not stop[0]:
        try:
            if not started:
                if ensure_group(redis):
                    log.info("dispatcher_group_created", stream=CANDLE_CLOSED_STREAM)
                prune_consumers(redis, keep=consumer)
                started = True
            if group_lost and ensure_group(redis, replay=REPLAY_ENTRIES):
                log.warning("dispatcher_group_recreated", stream=CANDLE_CLOSED_STREAM)
            group_lost = False
            dispatch_once(redis, consumer, settings.bot_tick_chunk, BLOCK_MS)
        except (RedisError, SQLAlchemyError) as exc:
            end_transaction()
            if backing_service(exc) is not None:
                watch.pause(exc, stop=lambda: stop[0])
            elif isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP"):
                group_lost = True  # Redis lost its data: create the group again, next pass
            else:
                log.warning("dispatch_failed", error_type=type(exc).__name__)
                time.sleep(errors.next())
            continue
        watch.recovered()
        errors.reset()


def dispatcher_connection(settings: Settings) -> Redis:
    """A client whose socket waits longer than a blocking read (the default would cut it)."""
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=BLOCK_MS / 1000 + 5,
    )


def main() -> int:
    """Entry point of the ``dispatcher`` Procfile process."""
    app = create_worker_app()
    settings: Settings = app.extensions["botyard.settings"]
    stop = [False]

    def request_stop(*_args: object) -> None:
        stop[0] = True  # finish the entries in hand, ack them, then leave

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    consumer = f"{os.uname().nodename}-{os.getpid()}"
    with app.app_context():
        log.info("dispatcher_starting", consumer=consumer, chunk=settings.bot_tick_chunk)
        run(dispatcher_connection(settings), settings, consumer, stop)
    log.info("dispatcher_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
