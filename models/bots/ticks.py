"""What a live run's ticks write: closed trades, one equity point per candle, the new state, logs.

Every row is keyed by the run and the candle that produced it (a trade by its client
order id ``"{run_id}:{exit_ts}:{n}"``, an equity point by ``(run_id, ts)``) and written
with ``ON CONFLICT DO NOTHING``, so a tick that runs twice adds nothing the second time.
See docs/execution.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from engine.ledger import plain_trade
from engine.live import RunSpan
from models.bots.bots import Bot
from models.bots.execution_logs import write_log
from models.bots.runs import BotRun, Costs
from models.db import Base
from models.db import session as db
from models.market.tables import TIMEFRAME_MS, Instrument
from models.trades import TRADE_COLUMNS, TradeColumns

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


@dataclass(frozen=True)
class LiveRun:
    """A running run with what its tick needs of its bot and instrument (one query for all)."""

    id: uuid.UUID
    bot_id: uuid.UUID
    owner_id: uuid.UUID
    bot_name: str
    started_at: datetime
    last_candle_ts: int | None
    broker_state: dict[str, Any]
    instrument_id: int
    timeframe: str
    strategy: dict[str, Any]
    risk: dict[str, Any]
    costs: Costs


def span_of(started_at: datetime, timeframe: str, warmup: int, epoch_bars: int) -> RunSpan:
    """A run's :class:`~engine.live.RunSpan`: where it trades from, its epochs' anchors."""
    return RunSpan.of(_ms(started_at), TIMEFRAME_MS[timeframe], warmup, epoch_bars)


def run_span(run: BotRun, timeframe: str, warmup: int, epoch_bars: int) -> tuple[int, int]:
    """``(anchor_ms, trade_from_ms)`` of a run: its first epoch's anchor and its first bar.

    Trading starts at the first bar of the timeframe grid opening at or after
    ``started_at``; the anchor is ``warmup`` bars before the epoch that bar falls in. A
    backtest of the candles from this anchor with ``trade_from_ms`` equals the run up to
    the end of that epoch.
    """
    span = span_of(run.started_at, timeframe, warmup, epoch_bars)
    return span.anchor(span.epoch_of(span.trade_from)), span.trade_from


def lock_running_runs(run_ids: Sequence[uuid.UUID]) -> list[LiveRun]:
    """The runs among ``run_ids`` that are running, with their bots' fields, locked in id order.

    One query for the whole batch, plain rows rather than ORM objects. The row locks make
    two deliveries of the same tick run one after the other, so the second sees the
    first one's ``last_candle_ts``; taking them in id order means two batches never
    deadlock. Only the run rows are locked, never a bot's.
    """
    rows = db.execute(
        select(
            BotRun.id,
            BotRun.bot_id,
            BotRun.owner_id,
            Bot.name,
            BotRun.started_at,
            BotRun.last_candle_ts,
            BotRun.broker_state,
            Bot.instrument_id,
            Bot.timeframe,
            Bot.strategy,
            Bot.risk,
            Bot.initial_capital,
            Bot.fee,
            Bot.slippage_bps,
            Instrument.fractional,
            Instrument.size_precision,
        )
        .join(Bot, Bot.id == BotRun.bot_id)
        .join(Instrument, Instrument.id == Bot.instrument_id)
        .where(BotRun.id.in_(run_ids), BotRun.status == "running")
        .order_by(BotRun.id)
        .with_for_update(of=BotRun)
    )
    return [
        LiveRun(
            id=r.id,
            bot_id=r.bot_id,
            owner_id=r.owner_id,
            bot_name=r.name,
            started_at=r.started_at,
            last_candle_ts=r.last_candle_ts,
            broker_state=r.broker_state,
            instrument_id=r.instrument_id,
            timeframe=r.timeframe,
            strategy=r.strategy,
            risk=r.risk,
            costs=(r.initial_capital, r.fee, r.slippage_bps, r.fractional, r.size_precision),
        )
        for r in rows
    ]


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
        (
            "info",
            "trade_closed",
            {"client_order_id": cid, **plain_trade(t, TRADE_COLUMNS)},
            int(t["exit_ts"]),
        )
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


def trade_records(run_id: uuid.UUID, trades: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A tick's closed trades as JSON (with their client order ids), as its log shows them."""
    ids = client_order_ids(run_id, [int(t["exit_ts"]) for t in trades])
    return [
        {"client_order_id": cid, **plain_trade(t, TRADE_COLUMNS)}
        for cid, t in zip(ids, trades, strict=True)
    ]


@dataclass
class Tick:
    """What one run's tick produced, ready to persist."""

    run: LiveRun
    trades: list[dict[str, Any]]
    equity_ts: list[int]
    equity: list[float]
    broker_state: dict[str, Any]
    last_candle_ts: int


_SAVE_EQUITY = text(
    """
    INSERT INTO bot_equity (run_id, ts, equity)
    SELECT * FROM unnest(CAST(:runs AS uuid[]), CAST(:ts AS bigint[]), CAST(:equity AS float8[]))
    ON CONFLICT DO NOTHING
    """
)
# Logs and run states travel as one JSON document each: Postgres parses it in C, where
# text arrays of JSON would be escaped element by element on the way out.
_SAVE_LOGS = text(
    """
    INSERT INTO execution_logs (run_id, bot_id, level, event, data, candle_ts)
    SELECT v.run_id, v.bot_id, v.level, v.event, v.data, v.candle_ts
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
         AS v(n int, run_id uuid, bot_id uuid, level text, event text, data jsonb, candle_ts bigint)
    ORDER BY v.n
    """
)
_SAVE_RUNS = text(
    """
    UPDATE bot_runs AS r
    SET broker_state = v.state, last_candle_ts = v.ts, consecutive_failures = 0, error = NULL
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(id uuid, state jsonb, ts bigint)
    WHERE r.id = v.id
    """
)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def save_ticks(ticks: Sequence[Tick]) -> None:
    """Persist ticks: new closed trades, equity points, logs and each run's state.

    Failures reset. Four statements for the whole batch, whatever its size: equity as
    arrays (``unnest``), logs and the runs' new state as one JSON document each, trades
    (rare) as rows.
    """
    trades: list[dict[str, Any]] = []
    equity: dict[str, list[Any]] = {"runs": [], "ts": [], "equity": []}
    logs: list[dict[str, Any]] = []
    for tick in ticks:
        run = tick.run
        ids = client_order_ids(run.id, [int(t["exit_ts"]) for t in tick.trades])
        trades += [
            {"run_id": run.id, "client_order_id": cid, **{k: t[k] for k in TRADE_COLUMNS}}
            for cid, t in zip(ids, tick.trades, strict=True)
        ]
        equity["runs"] += [run.id] * len(tick.equity_ts)
        equity["ts"] += tick.equity_ts
        equity["equity"] += tick.equity
        entries = tick_log_entries(
            run.id, tick.trades, tick.equity, tick.broker_state, tick.last_candle_ts
        )
        logs += [
            {
                "run_id": run.id,
                "bot_id": run.bot_id,
                "level": level,
                "event": event,
                "data": data,
                "candle_ts": candle_ts,
            }
            for level, event, data, candle_ts in entries
        ]
    if trades:
        db.execute(insert(BotTrade).on_conflict_do_nothing(), trades)
    if equity["runs"]:
        db.execute(_SAVE_EQUITY, equity)
    if logs:
        for n, row in enumerate(logs):
            row["n"] = n  # ids in the order written
        db.execute(_SAVE_LOGS, {"rows": _json(logs)})
    if ticks:
        runs = [{"id": t.run.id, "state": t.broker_state, "ts": t.last_candle_ts} for t in ticks]
        db.execute(_SAVE_RUNS, {"rows": _json(runs)})


def count_failures(
    failed: dict[uuid.UUID, str], max_failures: int, candle_ts: int
) -> list[uuid.UUID]:
    """Count one more failure in a row for each run, keep its reason and log it.

    Returns the runs that reached ``max_failures``; :func:`move_to_error` moves them, in a
    transaction of its own after this one commits. Only the run rows are updated here
    (the tick already holds their locks), never a bot's, so a tick never waits on a bot
    row a lifecycle action holds while that action waits on the run.
    """
    reached = []
    for run_id, message in failed.items():
        reason = message[:ERROR_CHARS]
        row = db.execute(
            update(BotRun)
            .where(BotRun.id == run_id)
            .values(consecutive_failures=BotRun.consecutive_failures + 1, error=reason)
            .returning(BotRun.bot_id, BotRun.consecutive_failures)
        ).first()
        if row is None:
            continue
        bot_id, failures = row
        data = {"error": reason, "failures": failures}
        write_log(run_id, bot_id, "warning", "tick_failed", data=data, candle_ts=candle_ts)
        if failures >= max_failures:
            reached.append(run_id)
    return reached


def move_to_error(run_id: uuid.UUID, max_failures: int, now: datetime, candle_ts: int) -> bool:
    """Move a run that failed ``max_failures`` times in a row, and its bot, to ``error``.

    Locks the bot's row before the run's, the lifecycle actions' order. Does nothing when
    the run is no longer running (the owner's pause or stop wins) or a later tick has
    succeeded since. Returns True when it moved the run.
    """
    bot_id = db.scalar(select(BotRun.bot_id).where(BotRun.id == run_id))
    if bot_id is None:
        return False
    db.execute(select(Bot.id).where(Bot.id == bot_id).with_for_update())
    moved = db.execute(
        update(BotRun)
        .where(
            BotRun.id == run_id,
            BotRun.status == "running",
            BotRun.consecutive_failures >= max_failures,
        )
        .values(status="error", stopped_at=now)
        .returning(BotRun.consecutive_failures, BotRun.error)
    ).first()
    if moved is None:
        return False
    db.execute(update(Bot).where(Bot.id == bot_id, Bot.status == "running").values(status="error"))
    data = {"error": moved.error, "failures": moved.consecutive_failures}
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
