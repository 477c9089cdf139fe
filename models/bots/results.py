"""What a bot's live run has done so far: trades in pages, its equity curve, its account.

Reads only: the tick path (models.bots.ticks) writes these rows. The run's metrics are
the performance area's snapshots (models/performance/snapshots.py), not computed here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from models.bots.bots import Bot
from models.bots.runs import BotRun
from models.bots.ticks import BotEquity, BotTrade
from models.db import session as db
from models.equity_curves import Curve
from models.market.candles import read_candles
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


def _unrealized(units: float, entry_price: float, mark: float | None) -> float | None:
    if units == 0.0:
        return 0.0
    return None if mark is None else units * (mark - entry_price)


def _candle_at(bot: Bot, ts: int) -> list[Any] | None:
    rows = read_candles(bot.instrument_id, bot.timeframe, ts, ts + 1, limit=1)
    return rows[0] if rows else None


def last_point(run_id: uuid.UUID) -> tuple[int, float] | None:
    """The run's last equity point ``(ts, equity)``, or None before its first tick."""
    row = db.execute(
        select(BotEquity.ts, BotEquity.equity)
        .where(BotEquity.run_id == run_id)
        .order_by(BotEquity.ts.desc())
        .limit(1)
    ).first()
    return None if row is None else (int(row[0]), float(row[1]))


def run_account(bot: Bot, run: BotRun | None) -> dict[str, Any]:
    """The run's identity, position, cash, equity and unrealized P&L; nulls without a run.

    Reads the last equity point and its candle only, never the whole curve. Unrealized
    P&L is ``units x (close - entry_price)`` at the close of the last equity point's
    candle (units are signed, so it holds for shorts); it excludes exit costs.
    """
    body: dict[str, Any] = {
        "run_id": None,
        "status": None,
        "started_at": None,
        "last_candle_ts": None,
        "last_tick_time": None,
        "position": None,
        "cash": None,
        "equity": None,
        "mark_price": None,
        "unrealized_pnl": None,
    }
    if run is None:
        return body
    state = run.broker_state
    point = last_point(run.id)
    units = float(state.get("units", 0.0))
    open_entry = int(state["entry_ts"]) if units != 0.0 else None
    last = _candle_at(bot, point[0]) if point else None
    mark = float(last[4]) if last is not None else None
    entry_price = float(state.get("entry_price", 0.0))
    body.update(
        run_id=run.id,
        status=run.status,
        started_at=run.started_at,
        last_candle_ts=run.last_candle_ts,
        last_tick_time=_ms_time(run.last_candle_ts),
        cash=float(state["cash"]),
        equity=point[1] if point else run.initial_capital,
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
