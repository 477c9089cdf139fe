"""The backtest job: load the candles, run the engine, persist the result.

``run_backtest`` is safe to run twice (RQ delivers at least once): a finished
backtest is left alone, and a re-run replaces the result set instead of adding
one. Progress and cancellation go through the backtest's row, at most every
``CHECKPOINT_S`` seconds. Errors in the spec or the data are recorded as
``failed`` with a message safe to show; anything else is recorded, then raised
so RQ retries it (a database blip, a killed worker).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from rq import get_current_job
from sqlalchemy import update

from engine.backtest import Cancelled
from engine.backtest import run_backtest as run_engine
from engine.candles import CandleError, Candles
from engine.params import ParamError
from engine.rule_nodes import RuleError
from models.backtests.backtests import FINISHED_BACKTEST_STATUSES, Backtest
from models.backtests.results import candles_fingerprint, save_result
from models.db import session as db
from models.market.candles import read_candles
from models.people.notifications import notify

log = structlog.get_logger(__name__)

CHECKPOINT_S = 0.5
GENERIC_FAILURE = "The backtest stopped on an internal error; it has been logged."


def _load_candles(spec: dict[str, Any]) -> Candles:
    rows = read_candles(
        spec["instrument_id"], spec["timeframe"], spec["start"], spec["end"], limit=10**8
    )
    return Candles.from_rows(rows) if rows else Candles.empty()


class _Progress:
    """The engine's checkpoint: writes progress, reports whether to go on."""

    def __init__(self, backtest_id: uuid.UUID) -> None:
        self.backtest_id = backtest_id
        self.last = (
            0.0  # the first call (engine start) checks: a cancel may have come while loading
        )

    def __call__(self, fraction: float) -> bool:
        now = time.monotonic()
        if now - self.last < CHECKPOINT_S or fraction >= 1.0:
            return True  # (at 1.0 the result is about to be saved with progress 100)
        self.last = now
        cancel = db.scalar(
            update(Backtest)
            .where(Backtest.id == self.backtest_id)
            .values(progress=int(fraction * 99))
            .returning(Backtest.cancel_requested)
        )
        db.commit()
        return not cancel


def _summary(backtest: Backtest) -> dict[str, Any]:
    """What the owner's notification says about ``backtest`` (small JSON, no secrets)."""
    spec = backtest.spec
    return {
        "backtest_id": str(backtest.id),
        "bot_id": spec.get("bot_id"),
        "bot_name": spec.get("bot_name"),
        "symbol": spec.get("symbol"),
        "timeframe": spec.get("timeframe"),
    }


def _notify_finished(backtest: Backtest, metrics: dict[str, Any]) -> None:
    """The "finished" notification with the headline metrics, in the result's transaction."""
    headline = ("total_return", "max_drawdown", "sharpe", "trades", "final_equity")
    data = {**_summary(backtest), **{key: metrics.get(key) for key in headline}}
    notify(backtest.owner_id, "backtest.finished", data)


def _finish(backtest: Backtest, status: str, error: str | None = None) -> None:
    backtest.status = status
    backtest.error = error
    backtest.finished_at = datetime.now(UTC)
    if status == "failed":  # in the same transaction as the status it announces
        notify(backtest.owner_id, "backtest.failed", {**_summary(backtest), "error": error})
    db.commit()


def _claim(backtest_id: uuid.UUID) -> Backtest | str:
    """Mark the backtest running, or say why it must not run (its current status)."""
    backtest = db.get(Backtest, backtest_id, with_for_update=True)
    if backtest is None:
        return "missing"  # the request that queued it rolled back
    if backtest.status in FINISHED_BACKTEST_STATUSES:
        db.rollback()
        return backtest.status
    if backtest.cancel_requested:
        _finish(backtest, "cancelled")
        return "cancelled"
    backtest.status, backtest.progress = "running", 0
    backtest.started_at = datetime.now(UTC)
    backtest.attempts += 1
    db.commit()
    return backtest


def _execute(backtest: Backtest) -> str:
    """Load, run the engine, save; returns the final status (raises on the unexpected)."""
    spec = backtest.spec
    candles = _load_candles(spec)
    if len(candles) == 0:
        message = f"No {spec['timeframe']} candles for {spec['symbol']} in that range."
        _finish(backtest, "failed", message)
        return "failed"
    fingerprint = candles_fingerprint(spec)
    config = {
        key: spec[key]
        for key in ("initial_capital", "fee", "slippage_bps", "fractional", "size_precision")
    }
    result = run_engine(
        candles, spec["strategy"], spec["risk"], config, checkpoint=_Progress(backtest.id)
    )
    position = result.open_position
    metrics = result.metrics.as_dict()
    save_result(
        backtest,
        result.trades.records(),
        result.equity.ts.tolist(),
        result.equity.equity.tolist(),
        {
            "bars": len(candles),
            "metrics": metrics,
            "open_position": dataclasses.asdict(position) if position else None,
            "engine_version": result.engine_version,
            "metrics_version": result.metrics_version,
            "candles_fingerprint": fingerprint,
        },
    )
    _notify_finished(backtest, metrics)
    db.commit()
    log.info("backtest_succeeded", bars=len(candles), trades=len(result.trades))
    return "succeeded"


def run_backtest(backtest_id: str) -> str:
    """Run one backtest; returns its final status."""
    claimed = _claim(uuid.UUID(backtest_id))
    if isinstance(claimed, str):
        return claimed
    backtest = claimed
    try:
        return _execute(backtest)
    except Cancelled:
        db.rollback()
        _finish(backtest, "cancelled")
        log.info("backtest_cancelled", backtest_id=backtest_id)
        return "cancelled"
    except (ParamError, RuleError, CandleError) as exc:
        db.rollback()
        _finish(backtest, "failed", str(exc))
        return "failed"
    except Exception:
        db.rollback()
        log.exception("backtest_crashed", backtest_id=backtest_id)
        job = get_current_job()
        if job is not None and job.retries_left:
            backtest.status = "queued"  # RQ runs it again after its backoff
            db.commit()
        else:
            _finish(backtest, "failed", GENERIC_FAILURE)
        raise
