"""What a tick tells the bots' owners: ``bot.trade``, ``bot.failure`` and ``bot.error``.

Called by the tick job (workers/ticks.py) inside its transactions, so the live events
and notifications exist exactly when the trades and failures they describe do. See
docs/accounts.md#live-events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

import structlog

from models.bots.ticks import LiveRun, Tick, trade_records
from models.db import session as db
from models.people import outbox
from models.people.bot_events import RunTrades, bot_failure, bot_status, bot_trades
from workers.transient import is_transient

log = structlog.get_logger(__name__)


def publish(
    locked: list[LiveRun], saved: list[Tick], failed: dict[uuid.UUID, str], candle_ts: int
) -> None:
    """The owners' ``bot.failure`` and ``bot.trade`` events, in the tick's transaction.

    The hot path stays as it was: runs that neither traded nor failed cost a loop step,
    and each owner whose runs traded costs one ``notify()`` (one settings lookup).
    """
    traded = [tick for tick in saved if tick.trades]
    if not traded and not failed:
        return
    runs = {run.id: run for run in locked}
    for run_id, error in failed.items():
        run = runs.get(run_id)
        if run is not None:
            bot_failure(run.owner_id, run.bot_id, run.id, error, candle_ts)
    by_owner: dict[uuid.UUID, list[RunTrades]] = {}
    for tick in traded:
        run = tick.run
        records = trade_records(run.id, tick.trades)
        by_owner.setdefault(run.owner_id, []).append(
            RunTrades(run.bot_id, run.bot_name, run.id, records)
        )
    for owner_id, owned in by_owner.items():
        _guarded(partial(bot_trades, owner_id, candle_ts, owned))


def announce_error(run: LiveRun, error: str) -> None:
    """The owner's ``bot.status`` event and ``bot.error`` notification for a run moved to error."""
    _guarded(
        partial(
            bot_status,
            run.owner_id,
            run.bot_id,
            run.bot_name,
            "errored",
            status="error",
            by="system",
            run_id=run.id,
            error=error,
        )
    )


def _guarded(announce: Callable[[], None]) -> None:
    """Run ``announce`` in a savepoint: a notification that fails must not fail the tick.

    What it staged for after the commit is dropped with it; a transient error still
    fails the job.
    """
    staged = outbox.staged(db())
    events, deliveries = len(staged.events), len(staged.deliveries)
    try:
        with db.begin_nested():
            announce()
    except Exception as exc:
        if is_transient(exc):
            raise
        del staged.events[events:], staged.deliveries[deliveries:]
        log.exception("bot_notification_failed")
