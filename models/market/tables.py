"""Instruments and candles.

Candles are stored at each instrument's base timeframe (1m for the synthetic
provider and live feeds) and the larger timeframes are materialised in the same
table from the base rows (see docs/market-data.md for the measurement behind
that choice). Prices are float8: every value is rounded to the instrument's
price precision before it is stored, so binary floats lose nothing a user sees.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from engine.candles import TIMEFRAMES
from models.db import Base

# The served timeframes and their lengths in ms (one definition, the engine's).
TIMEFRAME_MS: dict[str, int] = TIMEFRAMES


class Instrument(Base):
    """A tradable symbol such as ``BTC-USD`` from one provider."""

    __tablename__ = "instruments"
    __table_args__ = (
        CheckConstraint("symbol ~ '^[A-Z0-9]{1,12}-[A-Z0-9]{1,12}$'", name="symbol_format"),
        CheckConstraint(
            "base_timeframe IN ('1m','5m','15m','1h','4h','1d')", name="base_timeframe_known"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(25), unique=True)
    provider: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    base: Mapped[str] = mapped_column(String(12))
    quote: Mapped[str] = mapped_column(String(12))
    price_precision: Mapped[int] = mapped_column(SmallInteger)
    size_precision: Mapped[int] = mapped_column(SmallInteger)
    fractional: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    base_timeframe: Mapped[str] = mapped_column(String(3), default="1m", server_default="1m")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def timeframes(self) -> list[str]:
        """The timeframes this instrument can be served in: its base and every larger one."""
        base = TIMEFRAME_MS[self.base_timeframe]
        return [tf for tf, ms in TIMEFRAME_MS.items() if ms >= base]


class Candle(Base):
    """One OHLCV bar; ``ts`` is the bucket's open time (UTC)."""

    __tablename__ = "candles"
    __table_args__ = (
        CheckConstraint(
            "low <= open AND low <= close AND high >= open AND high >= close AND volume >= 0",
            name="ohlcv_valid",
        ),
    )

    instrument_id: Mapped[int] = mapped_column(
        ForeignKey("instruments.id", ondelete="CASCADE"), primary_key=True
    )
    timeframe: Mapped[str] = mapped_column(String(3), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
