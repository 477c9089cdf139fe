"""A closed trade's columns and API shape, shared by backtest trades and live bot trades.

Both areas store the same trade record, so its columns live here, below both, rather
than in one area that the other would have to import.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Float, String
from sqlalchemy.orm import Mapped, mapped_column

TRADE_COLUMNS = (
    "side",
    "units",
    "entry_ts",
    "entry_price",
    "exit_ts",
    "exit_price",
    "fees",
    "pnl",
    "pnl_pct",
    "exit_reason",
)


class TradeColumns:
    """A closed trade's columns, mixed into each area's trade table (times in epoch ms)."""

    side: Mapped[str] = mapped_column(String(5))
    units: Mapped[float] = mapped_column(Float)
    entry_ts: Mapped[int] = mapped_column(BigInteger)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_ts: Mapped[int] = mapped_column(BigInteger)
    exit_price: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    pnl_pct: Mapped[float] = mapped_column(Float)
    exit_reason: Mapped[str] = mapped_column(String(16))


def trade_item(trade: Any, seq: int) -> dict[str, Any]:
    """A stored trade (backtest or live) as the API shows it: its columns plus ISO times."""
    return {
        "seq": seq,
        **{k: getattr(trade, k) for k in TRADE_COLUMNS},
        "entry_time": datetime.fromtimestamp(trade.entry_ts / 1000, UTC),
        "exit_time": datetime.fromtimestamp(trade.exit_ts / 1000, UTC),
    }
