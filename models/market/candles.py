"""Bulk candle writes and reads, in the fast forms (arrays in, arrays out).

Writes go through one ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO
UPDATE``: idempotent (re-sending a candle rewrites the same row) and many times
faster than row-by-row inserts. Reads return ``[ts_ms, o, h, l, c, v]`` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text

from models.db import session as db
from models.market.tables import TIMEFRAME_MS, Instrument

Row = list[float]

_UPSERT = text(
    """
    INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume)
    SELECT :iid, :tf, to_timestamp(u.t / 1000.0), u.o, u.h, u.l, u.c, u.v
    FROM unnest(CAST(:ts AS bigint[]), CAST(:o AS float8[]), CAST(:h AS float8[]),
                CAST(:l AS float8[]), CAST(:c AS float8[]), CAST(:v AS float8[]))
         AS u(t, o, h, l, c, v)
    ON CONFLICT (instrument_id, timeframe, ts) DO UPDATE
    SET open = excluded.open, high = excluded.high, low = excluded.low,
        close = excluded.close, volume = excluded.volume
    """
)

# Rebuild derived buckets from base rows. date_bin aligns buckets to the Unix epoch (UTC).
# The volume is rounded to the size precision: a float sum of rounded volumes carries
# binary noise (0.1 + 0.2), which would otherwise be stored and served.
_DERIVE = text(
    """
    INSERT INTO candles (instrument_id, timeframe, ts, open, high, low, close, volume)
    SELECT instrument_id, :tf, date_bin(CAST(:step AS interval), ts, timestamptz 'epoch'),
           (array_agg(open ORDER BY ts))[1], max(high), min(low),
           (array_agg(close ORDER BY ts DESC))[1],
           CAST(round(CAST(sum(volume) AS numeric), :size_precision) AS float8)
    FROM candles
    WHERE instrument_id = :iid AND timeframe = :base
      AND ts >= to_timestamp(:start / 1000.0) AND ts < to_timestamp(:end / 1000.0)
    GROUP BY instrument_id, 3
    ON CONFLICT (instrument_id, timeframe, ts) DO UPDATE
    SET open = excluded.open, high = excluded.high, low = excluded.low,
        close = excluded.close, volume = excluded.volume
    """
)

_RANGE = text(
    """
    SELECT CAST(extract(epoch FROM ts) * 1000 AS bigint), open, high, low, close, volume
    FROM candles
    WHERE instrument_id = :iid AND timeframe = :tf
      AND ts >= to_timestamp(:start / 1000.0) AND ts < to_timestamp(:end / 1000.0)
    ORDER BY ts
    LIMIT :limit
    """
)


def upsert_candles(instrument_id: int, timeframe: str, rows: Sequence[Sequence[float]]) -> int:
    """Insert or overwrite candles given as ``[ts_ms, o, h, l, c, v]`` rows; returns the count."""
    if not rows:
        return 0
    columns = list(zip(*rows, strict=True))
    db.execute(
        _UPSERT,
        {
            "iid": instrument_id,
            "tf": timeframe,
            "ts": [int(t) for t in columns[0]],
            "o": list(columns[1]),
            "h": list(columns[2]),
            "l": list(columns[3]),
            "c": list(columns[4]),
            "v": list(columns[5]),
        },
    )
    return len(rows)


def derive_timeframes(instrument: Instrument, start_ms: int, end_ms: int) -> None:
    """Recompute every larger timeframe's buckets that overlap base rows in [start, end)."""
    base_ms = TIMEFRAME_MS[instrument.base_timeframe]
    for tf in instrument.timeframes():
        step = TIMEFRAME_MS[tf]
        if step == base_ms:
            continue
        lo = start_ms // step * step
        hi = -(-end_ms // step) * step
        db.execute(
            _DERIVE,
            {
                "tf": tf,
                "step": f"{step // 1000} seconds",
                "iid": instrument.id,
                "base": instrument.base_timeframe,
                "size_precision": instrument.size_precision,
                "start": lo,
                "end": hi,
            },
        )


def read_candles(
    instrument_id: int, timeframe: str, start_ms: int, end_ms: int, limit: int
) -> list[Row]:
    """Rows with ``start <= ts < end``, oldest first, at most ``limit``."""
    result = db.execute(
        _RANGE,
        {"iid": instrument_id, "tf": timeframe, "start": start_ms, "end": end_ms, "limit": limit},
    )
    return [[int(r[0]), r[1], r[2], r[3], r[4], r[5]] for r in result]


def round_rows(
    rows: Sequence[Sequence[float]], price_precision: int, size_precision: int
) -> list[Row]:
    """``[ts_ms, o, h, l, c, v]`` rows with prices and volume rounded to the given decimals.

    Each value becomes the double nearest its rounded decimal, so JSON shows ``1242.4``,
    never binary noise such as ``1242.3999999999942`` (a sum or a difference of prices).
    The timestamp comes back as a Python int.
    """
    if not rows:
        return []
    table = np.asarray(rows, dtype=np.float64)
    columns = [
        table[:, 0].astype(np.int64).tolist(),
        *np.round(table[:, 1:5], price_precision).T.tolist(),
        np.round(table[:, 5], size_precision).tolist(),
    ]
    return [list(row) for row in zip(*columns, strict=True)]


def last_candle_ms(instrument_id: int, timeframe: str) -> int | None:
    """Open time of the newest stored candle, or None."""
    value = db.scalar(
        text(
            "SELECT CAST(extract(epoch FROM max(ts)) * 1000 AS bigint) FROM candles "
            "WHERE instrument_id = :iid AND timeframe = :tf"
        ),
        {"iid": instrument_id, "tf": timeframe},
    )
    return int(value) if value is not None else None


def first_candle_ms(instrument_id: int, timeframe: str) -> int | None:
    """Open time of the oldest stored candle, or None."""
    value = db.scalar(
        text(
            "SELECT CAST(extract(epoch FROM min(ts)) * 1000 AS bigint) FROM candles "
            "WHERE instrument_id = :iid AND timeframe = :tf"
        ),
        {"iid": instrument_id, "tf": timeframe},
    )
    return int(value) if value is not None else None


# Decimal places of a percentage change: hundredths of a percent, i.e. one basis point.
PCT_DECIMALS = 2


@dataclass(frozen=True)
class Quote:
    """Last price and 24-hour statistics of an instrument, with its display precisions."""

    symbol: str
    price: float
    ts_ms: int
    open_24h: float
    high_24h: float
    low_24h: float
    volume_24h: float
    price_precision: int
    size_precision: int

    def as_dict(self) -> dict[str, float | int | str | None]:
        """The JSON body of the quote endpoint (and of the stream's ``quote`` events).

        Prices and the change are rounded to the price precision, the volume to the size
        precision and the percentage to ``PCT_DECIMALS``: no binary noise reaches clients.
        """
        pp = self.price_precision
        change = self.price - self.open_24h
        pct = round(change / self.open_24h * 100, PCT_DECIMALS) if self.open_24h else None
        return {
            "symbol": self.symbol,
            "price": round(self.price, pp),
            "ts": self.ts_ms,
            "change_24h": round(change, pp),
            "change_24h_pct": pct,
            "high_24h": round(self.high_24h, pp),
            "low_24h": round(self.low_24h, pp),
            "volume_24h": round(self.volume_24h, self.size_precision),
        }


def quote_from_candles(instrument: Instrument) -> Quote | None:
    """Compute a quote from the last 24 hours of base candles (the cache's fallback)."""
    row = db.execute(
        text(
            """
            WITH last AS (
                SELECT max(ts) AS ts FROM candles WHERE instrument_id = :iid AND timeframe = :tf
            ), day AS (
                SELECT c.* FROM candles c, last
                WHERE c.instrument_id = :iid AND c.timeframe = :tf
                  AND c.ts > last.ts - interval '24 hours' AND c.ts <= last.ts
            )
            SELECT CAST(extract(epoch FROM (SELECT ts FROM last)) * 1000 AS bigint),
                   (SELECT close FROM day ORDER BY ts DESC LIMIT 1),
                   (SELECT open FROM day ORDER BY ts LIMIT 1),
                   max(high), min(low), sum(volume)
            FROM day
            """
        ),
        {"iid": instrument.id, "tf": instrument.base_timeframe},
    ).one()
    if row[0] is None:
        return None
    tf_ms = TIMEFRAME_MS[instrument.base_timeframe]
    return Quote(
        symbol=instrument.symbol,
        price=float(row[1]),
        ts_ms=int(row[0]) + tf_ms,
        open_24h=float(row[2]),
        high_24h=float(row[3]),
        low_24h=float(row[4]),
        volume_24h=float(row[5]),
        price_precision=instrument.price_precision,
        size_precision=instrument.size_precision,
    )
