"""What a live run's ticks write: closed trades, one equity point per candle, the new state, logs.

Every row is keyed by the run and the candle that produced it (a trade by its client
order id ``"{run_id}:{exit_ts}:{n}"``, an equity point by ``(run_id, ts)``) and written
with ``ON CONFLICT DO NOTHING``, so a tick that runs twice adds nothing the second time.
See docs/execution.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from models.backtest_results import TRADE_COLUMNS
from models.backtests import TradeColumns
from models.bot_runs import BotRun
from models.bots import Bot
from models.db import Base
from models.db import session as db
from models.execution_logs import write_log, write_logs
from models.market import TIMEFRAME_MS

# Long enough for any exception text a person needs, short enough for a list view.
ERROR_CHARS = 2_000


class BotTrade(TradeColumns, Base):
    """A closed trade of a live run, keyed by the client order id of its closing fill."""

    __tablename__ = "bot_trades"
    __table_args__ = (Index("ix_bot_trades_run_id_exit_ts", "run_id", "exit_ts"),)

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    client_order_id: Mapped[str] = mapped_column(String(80), primary_key=True)


class BotEquity(Base):
    """A live run's mark-to-market equity at one candle's close."""

    __tablename__ = "bot_equity"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bot_runs.id", ondelete="CASCADE"), primary_key=True
    )
    ts: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    equity: Mapped[float] = mapped_column(Float)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def run_span(run: BotRun, timeframe: str, warmup: int) -> tuple[int, int]:
    """``(anchor_ms, trade_from_ms)`` of a run: where its signals start and its trading starts.

    Trading starts at the first bar of the timeframe grid opening at or after
    ``started_at``; the anchor is ``warmup`` bars before it. Both are fixed for the whole
    run, so every tick computes signals over the same series a backtest from the anchor
    would (indicators seeded from the first bars depend on where the series starts).
    """
    step = TIMEFRAME_MS[timeframe]
    trade_from = -(-_ms(run.started_at) // step) * step
    return trade_from - warmup * step, trade_from


def lock_running_run(run_id: uuid.UUID) -> BotRun | None:
    """The run, re-read under a row lock, if it is running; None when paused, stopped or gone.

    The lock makes two deliveries of the same tick run one after the other, so the
    second one sees the first one's ``last_candle_ts``.
    """
    run = db.scalar(
        select(BotRun)
        .where(BotRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return run if run is not None and run.status == "running" else None


def client_order_ids(run_id: uuid.UUID, exit_ts: Sequence[int]) -> list[str]:
    """``"{run_id}:{candle_ts}:{n}"`` for trades closed on those candles, n counting per candle."""
    seen: dict[int, int] = {}
    ids = []
    for ts in exit_ts:
        n = seen.get(ts, 0)
        seen[ts] = n + 1
        ids.append(f"{run_id}:{ts}:{n}")
    return ids


def tick_log_entries(
    run_id: uuid.UUID,
    trades: Sequence[dict[str, Any]],
    equity: Sequence[float],
    broker_state: dict[str, Any],
    last_candle_ts: int,
) -> list[tuple[str, str, dict[str, Any], int | None]]:
    """The log entries of one tick: a ``trade_closed`` per new trade, then one ``tick``."""
    ids = client_order_ids(run_id, [int(t["exit_ts"]) for t in trades])
    entries: list[tuple[str, str, dict[str, Any], int | None]] = [
        ("info", "trade_closed", {"client_order_id": cid, **_json_trade(t)}, int(t["exit_ts"]))
        for cid, t in zip(ids, trades, strict=True)
    ]
    tick = {
        "candles": len(equity),
        "equity": float(equity[-1]) if len(equity) else None,
        "cash": float(broker_state.get("cash", 0.0)),
        "units": float(broker_state.get("units", 0.0)),
        "trades_closed": len(trades),
    }
    entries.append(("info", "tick", tick, last_candle_ts))
    return entries


def _json_trade(trade: dict[str, Any]) -> dict[str, Any]:
    """A trade record's columns as plain JSON values (the engine may hand numpy scalars)."""
    out: dict[str, Any] = {}
    for key in TRADE_COLUMNS:
        value = trade[key]
        if key.endswith("_ts"):
            out[key] = int(value)
        elif isinstance(value, str):
            out[key] = value
        else:
            out[key] = float(value)
    return out


def save_tick(
    run: BotRun,
    *,
    trades: Sequence[dict[str, Any]],
    equity_ts: Sequence[int],
    equity: Sequence[float],
    broker_state: dict[str, Any],
    last_candle_ts: int,
) -> None:
    """Persist one tick of a run: new closed trades, equity points, state; failures reset."""
    if trades:
        ids = client_order_ids(run.id, [int(t["exit_ts"]) for t in trades])
        rows = [
            {"run_id": run.id, "client_order_id": cid, **{k: t[k] for k in TRADE_COLUMNS}}
            for cid, t in zip(ids, trades, strict=True)
        ]
        db.execute(insert(BotTrade).on_conflict_do_nothing(), rows)
    if len(equity_ts):
        points = [
            {"run_id": run.id, "ts": int(ts), "equity": float(value)}
            for ts, value in zip(equity_ts, equity, strict=True)
        ]
        db.execute(insert(BotEquity).on_conflict_do_nothing(), points)
    write_logs(
        run.id, run.bot_id, tick_log_entries(run.id, trades, equity, broker_state, last_candle_ts)
    )
    run.broker_state = broker_state
    run.last_candle_ts = last_candle_ts
    run.consecutive_failures = 0
    run.error = None
    db.flush()


def record_tick_failure(
    run_id: uuid.UUID,
    message: str,
    max_failures: int,
    now: datetime,
    candle_ts: int | None = None,
) -> bool:
    """Count one more consecutive failure of the run, keep its reason and log it.

    At ``max_failures`` in a row a running run moves to ``error`` (closed at ``now``) and
    so does its bot. Returns True when this failure did that. The bot's row is locked
    before the run's, in the same order as the lifecycle actions, so the two never deadlock.
    """
    bot_id = db.scalar(select(BotRun.bot_id).where(BotRun.id == run_id))
    if bot_id is None:
        return False
    db.execute(select(Bot.id).where(Bot.id == bot_id).with_for_update())
    failures = db.scalar(
        update(BotRun)
        .where(BotRun.id == run_id)
        .values(
            consecutive_failures=BotRun.consecutive_failures + 1,
            error=message[:ERROR_CHARS],
        )
        .returning(BotRun.consecutive_failures)
    )
    if failures is None:
        return False
    reason = message[:ERROR_CHARS]
    data = {"error": reason, "failures": failures}
    write_log(run_id, bot_id, "warning", "tick_failed", data=data, candle_ts=candle_ts)
    if failures < max_failures:
        return False
    moved = db.scalar(
        update(BotRun)
        .where(BotRun.id == run_id, BotRun.status == "running")
        .values(status="error", stopped_at=now)
        .returning(BotRun.id)
    )
    if moved is None:  # paused or stopped meanwhile: the owner's action wins
        return False
    db.execute(update(Bot).where(Bot.id == bot_id, Bot.status == "running").values(status="error"))
    write_log(run_id, bot_id, "error", "run_errored", data=data, candle_ts=candle_ts)
    return True


def run_trades(run_id: uuid.UUID) -> list[BotTrade]:
    """The run's closed trades, oldest exit first."""
    return list(
        db.scalars(
            select(BotTrade)
            .where(BotTrade.run_id == run_id)
            .order_by(BotTrade.exit_ts, BotTrade.client_order_id)
        )
    )


def run_equity(run_id: uuid.UUID) -> list[tuple[int, float]]:
    """The run's equity points ``(ts, equity)``, oldest first."""
    rows = db.execute(
        select(BotEquity.ts, BotEquity.equity)
        .where(BotEquity.run_id == run_id)
        .order_by(BotEquity.ts)
    )
    return [(int(ts), float(value)) for ts, value in rows]
