"""The catch-up sweep: tick the running bots the dispatcher left behind (periodic job).

The dispatcher ticks runs when the feed announces a closed candle. Whatever it missed
(downtime of the dispatcher, the workers or Redis, a tick job lost with a killed worker,
events from before the dispatcher's group existed) shows up as a run whose
``last_candle_ts`` is older than the newest stored candle of its instrument and
timeframe. Every minute this job finds such runs, most lagging first and at most
``BOT_SWEEP_LIMIT`` of them, and queues tick jobs up to that newest candle. A candle must
have closed ``BOT_SWEEP_GRACE_S`` ago, so the dispatcher gets the first go.

The ticks use the stale-candle policy (``BOT_FRESH_BARS``, ``engine.live``): the bars a
run missed record equity, but only the last few may trade. Job ids are
``catchup-{symbol}-{timeframe}-{candle_ts}-{hash of the chunk's run ids}``, so two passes
(or two schedulers) that find the same runs queue nothing twice, while a pass that finds
others (the rest of a bounded pass) does queue them; a tick already done is skipped anyway. When
the ``bots`` queue already holds more than ``BACKLOG_JOBS`` jobs the workers are
behind: the pass queues nothing, since it would only add duplicates of what is waiting.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict

import structlog
from flask import current_app
from rq import get_current_job
from sqlalchemy import text

from models.db import session as db
from models.market.tables import TIMEFRAME_MS
from workers.enqueue import enqueue_tick
from workers.queues import BOTS, get_queue

log = structlog.get_logger(__name__)

BACKLOG_JOBS = 100

_LAGGING = text(
    """
    WITH pairs AS (
        SELECT DISTINCT b.instrument_id, b.timeframe
        FROM bot_runs r JOIN bots b ON b.id = r.bot_id
        WHERE r.status = 'running'
    ), latest AS (
        SELECT p.instrument_id, p.timeframe,
               (SELECT CAST(extract(epoch FROM max(c.ts)) * 1000 AS bigint) FROM candles c
                WHERE c.instrument_id = p.instrument_id AND c.timeframe = p.timeframe) AS ts
        FROM pairs p
    )
    SELECT i.symbol, b.timeframe, l.ts, r.id
    FROM bot_runs r
    JOIN bots b ON b.id = r.bot_id
    JOIN instruments i ON i.id = b.instrument_id
    JOIN latest l ON l.instrument_id = b.instrument_id AND l.timeframe = b.timeframe
    JOIN unnest(CAST(:timeframes AS text[]), CAST(:steps AS bigint[])) AS s(tf, step)
      ON s.tf = b.timeframe
    WHERE r.status = 'running'
      AND NOT EXISTS (SELECT 1 FROM bot_mirrors m WHERE m.bot_id = r.bot_id)
      AND l.ts IS NOT NULL
      AND (r.last_candle_ts IS NULL OR r.last_candle_ts < l.ts)
      AND l.ts >= CAST(extract(epoch FROM r.started_at) * 1000 AS bigint)
      AND l.ts + s.step <= :closed_before
    ORDER BY COALESCE(r.last_candle_ts, 0), r.id
    LIMIT :limit
    """
)


def lagging_runs(now_ms: int, grace_ms: int, limit: int) -> list[tuple[str, str, int, str]]:
    """``(symbol, timeframe, newest candle ts, run id)`` of running runs behind, most lagging first.

    Only candles that closed at least ``grace_ms`` before ``now_ms`` count, and a run that
    started after the newest candle is not behind. Mirrors are left out: they catch up
    with their source's tick (docs/execution.md, "Mirrors").
    """
    params = {
        "closed_before": now_ms - grace_ms,
        "limit": limit,
        "timeframes": list(TIMEFRAME_MS),
        "steps": list(TIMEFRAME_MS.values()),
    }
    rows = db.execute(_LAGGING, params)
    return [(str(symbol), str(tf), int(ts), str(run_id)) for symbol, tf, ts, run_id in rows]


def catch_up(now_ms: int | None = None) -> dict[str, int]:
    """Queue catch-up ticks for lagging runs; returns ``{"runs": n, "jobs": m}``."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("catch_up runs as an RQ job")
    settings = current_app.extensions["botyard.settings"]
    queue = get_queue(BOTS, job.connection)
    if queue.count > BACKLOG_JOBS:
        log.warning("catch_up_skipped", waiting_jobs=queue.count)
        return {"runs": 0, "jobs": 0}
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lagging = lagging_runs(now, settings.bot_sweep_grace_s * 1000, settings.bot_sweep_limit)
    db.rollback()
    groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for symbol, timeframe, candle_ts, run_id in lagging:
        groups[(symbol, timeframe, candle_ts)].append(run_id)
    queued = 0
    chunk = settings.bot_tick_chunk
    for (symbol, timeframe, candle_ts), run_ids in groups.items():
        ordered = sorted(run_ids)
        for index in range(0, len(ordered), chunk):
            part = ordered[index : index + chunk]
            digest = hashlib.sha1("".join(part).encode(), usedforsecurity=False).hexdigest()
            job_id = f"catchup-{symbol}-{timeframe}-{candle_ts}-{digest[:12]}"
            if enqueue_tick(job.connection, part, candle_ts, job_id):
                queued += 1
    log.info("catch_up", runs=len(lagging), jobs=queued)
    return {"runs": len(lagging), "jobs": queued}
