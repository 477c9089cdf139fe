"""A backtest's results: written once per run (idempotently), read in pages or for charts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, text

from models.backtests.backtests import Backtest, BacktestEquity, BacktestTrade
from models.db import raw_connection
from models.db import session as db
from models.equity_curves import Curve, count_points, points_for_chart, points_page
from models.trades import TRADE_COLUMNS, trade_item

BACKTEST_CURVE = Curve(BacktestEquity, "backtest_id")

# The trade columns travel as comma-separated text: building a few strings is much faster
# than adapting each value separately, and repr() round-trips every float.
_INSERT_TRADES = text(
    """
    INSERT INTO backtest_trades (backtest_id, seq, side, units, entry_ts, entry_price,
                                 exit_ts, exit_price, fees, pnl, pnl_pct, exit_reason)
    SELECT :bid, u.seq, u.side, u.units, u.entry_ts, u.entry_price,
           u.exit_ts, u.exit_price, u.fees, u.pnl, u.pnl_pct, u.reason
    FROM unnest(
        CAST(string_to_array(:side, ',') AS text[]),
        CAST(string_to_array(:units, ',') AS float8[]),
        CAST(string_to_array(:entry_ts, ',') AS bigint[]),
        CAST(string_to_array(:entry_price, ',') AS float8[]),
        CAST(string_to_array(:exit_ts, ',') AS bigint[]),
        CAST(string_to_array(:exit_price, ',') AS float8[]),
        CAST(string_to_array(:fees, ',') AS float8[]),
        CAST(string_to_array(:pnl, ',') AS float8[]),
        CAST(string_to_array(:pnl_pct, ',') AS float8[]),
        CAST(string_to_array(:exit_reason, ',') AS text[])
    ) WITH ORDINALITY AS u(side, units, entry_ts, entry_price, exit_ts, exit_price, fees, pnl,
                           pnl_pct, reason, seq)
    """
)

# Every value of every candle a backtest read, in time order, hashed in Postgres: exact (float8
# text output round-trips) and a few milliseconds per 10,000 bars, so GET can re-check it.
_CANDLE_DIGEST = text(
    """
    SELECT md5(string_agg(
        concat_ws(',', CAST(extract(epoch FROM ts) * 1000 AS bigint),
                  open, high, low, close, volume),
        ';' ORDER BY ts))
    FROM candles
    WHERE instrument_id = :iid AND timeframe = :tf
      AND ts >= to_timestamp(:start / 1000.0) AND ts < to_timestamp(:end / 1000.0)
    """
)


def candles_fingerprint(spec: dict[str, Any]) -> str:
    """MD5 (hex) of the candles under ``spec``; a different value means the data changed."""
    digest = db.scalar(
        _CANDLE_DIGEST,
        {
            "iid": spec["instrument_id"],
            "tf": spec["timeframe"],
            "start": spec["start"],
            "end": spec["end"],
        },
    )
    return str(digest or "")


def _copy_equity(backtest_id: uuid.UUID, ts: Sequence[int], equity: Sequence[float]) -> None:
    """Bulk-load the curve with one COPY in the session's transaction (the fast form).

    The rows go as one text block: building it is a few milliseconds, where adapting
    each value separately costs several times that. repr() round-trips every float.
    """
    raw = raw_connection()
    prefix = f"{backtest_id}\t"
    block = "".join(f"{prefix}{t}\t{e!r}\n" for t, e in zip(ts, equity, strict=True))
    with (
        raw.cursor() as cursor,
        cursor.copy("COPY backtest_equity (backtest_id, ts, equity) FROM STDIN") as copy,
    ):
        copy.write(block)


def save_result(
    backtest: Backtest,
    trades: Sequence[dict[str, Any]],
    equity_ts: Sequence[int],
    equity: Sequence[float],
    summary: dict[str, Any],
) -> None:
    """Replace the backtest's trades and equity and mark it succeeded (one transaction).

    Deleting first makes a re-run (RQ delivers at least once) leave exactly one result set.
    """
    db.execute(delete(BacktestTrade).where(BacktestTrade.backtest_id == backtest.id))
    db.execute(delete(BacktestEquity).where(BacktestEquity.backtest_id == backtest.id))
    if trades:
        # Sides and exit reasons are fixed words without commas; numbers go through repr.
        columns = {
            name: ",".join(t[name] if isinstance(t[name], str) else repr(t[name]) for t in trades)
            for name in TRADE_COLUMNS
        }
        db.execute(_INSERT_TRADES, {"bid": backtest.id, "n": len(trades), **columns})
    if len(equity_ts):
        _copy_equity(backtest.id, equity_ts, equity)
    for key, value in summary.items():
        setattr(backtest, key, value)
    backtest.status = "succeeded"
    backtest.progress = 100
    backtest.error = None
    backtest.finished_at = datetime.now(UTC)


def trades_page(
    backtest_id: uuid.UUID, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of trades in order, with times as datetimes, and the total count."""
    total = int(
        db.scalar(
            select(func.count())
            .select_from(BacktestTrade)
            .where(BacktestTrade.backtest_id == backtest_id)
        )
        or 0
    )
    rows = db.scalars(
        select(BacktestTrade)
        .where(BacktestTrade.backtest_id == backtest_id)
        .order_by(BacktestTrade.seq)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return [trade_item(t, t.seq) for t in rows], total


def equity_count(backtest_id: uuid.UUID) -> int:
    """Bars in the backtest's equity curve."""
    return count_points(BACKTEST_CURVE, backtest_id)


def equity_page(backtest_id: uuid.UUID, after_ts: int | None, limit: int) -> list[list[float]]:
    """Up to ``limit`` ``[ts, equity]`` rows after ``after_ts`` (exclusive), oldest first."""
    return points_page(BACKTEST_CURVE, backtest_id, after_ts, limit)


def equity_for_chart(backtest_id: uuid.UUID, points: int) -> list[list[float]]:
    """The curve downsampled to about ``points`` bars (see :func:`points_for_chart`)."""
    return points_for_chart(BACKTEST_CURVE, backtest_id, points)
