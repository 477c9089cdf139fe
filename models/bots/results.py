"""What a bot's live run has done so far: trades in pages, its equity curve, its performance.

Reads only: the tick path (models.bots.ticks) writes these rows. Metrics are the shared
set of :func:`engine.metrics.compute_metrics`, fed the same inputs a backtest feeds it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from engine.metrics import METRICS_VERSION, compute_metrics
from models.bots.bots import Bot
from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade, run_equity, run_trades
from models.db import session as db
from models.equity_curves import Curve
from models.market.candles import read_candles
from models.market.tables import TIMEFRAME_MS
from models.trades import trade_item

BOT_CURVE = Curve(BotEquity, "run_id")


def _ms_time(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


def run_trades_page(
    run_id: uuid.UUID, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the run's closed trades, oldest exit first, and the total count.

    ``seq`` is the trade's 1-based position in that order (stable: trades are only added
    after the last one).
    """
    total = int(
        db.scalar(select(func.count()).select_from(BotTrade).where(BotTrade.run_id == run_id)) or 0
    )
    offset = (page - 1) * page_size
    rows = db.scalars(
        select(BotTrade)
        .where(BotTrade.run_id == run_id)
        .order_by(BotTrade.exit_ts, BotTrade.client_order_id)
        .limit(page_size)
        .offset(offset)
    )
    items = [
        {**trade_item(t, offset + i + 1), "client_order_id": t.client_order_id}
        for i, t in enumerate(rows)
    ]
    return items, total


def bars_in_market(ts: list[int], trades: list[BotTrade], open_entry_ts: int | None) -> int:
    """Closes that see a position: ``entry_ts <= ts < exit_ts`` of a trade, or after an open entry.

    Fills happen at a bar's open, so the close of the entry bar sees the position and the
    close of the exit bar does not, as in :meth:`engine.ledger.EquityCurve.bars_in_market`.
    """
    marks = np.asarray(ts, dtype=np.int64)
    held = np.zeros(len(marks), dtype=bool)
    for trade in trades:
        held |= (marks >= trade.entry_ts) & (marks < trade.exit_ts)
    if open_entry_ts is not None:
        held |= marks >= open_entry_ts
    return int(held.sum())


def _unrealized(units: float, entry_price: float, mark: float | None) -> float | None:
    if units == 0.0:
        return 0.0
    return None if mark is None else units * (mark - entry_price)


def _candle_at(bot: Bot, ts: int) -> list[Any] | None:
    rows = read_candles(bot.instrument_id, bot.timeframe, ts, ts + 1, limit=1)
    return rows[0] if rows else None


def run_performance(bot: Bot, run: BotRun | None) -> dict[str, Any]:
    """The run's metrics, position, cash and unrealized P&L; the fields are null without a run.

    Unrealized P&L is ``units x (close - entry_price)`` at the close of the last equity
    point's candle (units are signed, so it holds for shorts); it excludes exit costs.
    """
    body: dict[str, Any] = {
        "run_id": None,
        "status": None,
        "started_at": None,
        "last_candle_ts": None,
        "last_tick_time": None,
        "metrics": None,
        "metrics_version": METRICS_VERSION,
        "position": None,
        "cash": None,
        "equity": None,
        "mark_price": None,
        "unrealized_pnl": None,
    }
    if run is None:
        return body
    state = run.broker_state
    points = run_equity(run.id)
    trades = run_trades(run.id)
    ts = [p[0] for p in points]
    units = float(state.get("units", 0.0))
    open_entry = int(state["entry_ts"]) if units != 0.0 else None
    first = _candle_at(bot, ts[0]) if ts else None
    last = _candle_at(bot, ts[-1]) if ts else None
    mark = float(last[4]) if last is not None else None
    metrics = compute_metrics(
        np.asarray(ts, dtype=np.int64),
        np.asarray([p[1] for p in points], dtype=np.float64),
        initial_capital=run.initial_capital,
        trade_pnl=np.asarray([t.pnl for t in trades], dtype=np.float64),
        trade_pnl_pct=np.asarray([t.pnl_pct for t in trades], dtype=np.float64),
        bars_in_market=bars_in_market(ts, trades, open_entry),
        first_open=float(first[1]) if first is not None else None,
        last_close=mark,
        bar_ms=TIMEFRAME_MS[bot.timeframe],
    )
    entry_price = float(state.get("entry_price", 0.0))
    body.update(
        run_id=run.id,
        status=run.status,
        started_at=run.started_at,
        last_candle_ts=run.last_candle_ts,
        last_tick_time=_ms_time(run.last_candle_ts),
        metrics=metrics.as_dict(),
        cash=float(state["cash"]),
        equity=points[-1][1] if points else run.initial_capital,
        mark_price=mark,
        unrealized_pnl=_unrealized(units, entry_price, mark),
    )
    if units != 0.0:
        body["position"] = {
            "side": "long" if units > 0 else "short",
            "units": abs(units),
            "entry_price": entry_price,
            "entry_time": _ms_time(open_entry),
        }
    return body
