"""A backtest's results: written once per run (idempotently), read in pages or for charts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, text

from models.backtests import Backtest, BacktestEquity, BacktestTrade
from models.db import session as db

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

_INSERT_EQUITY = text(
    """
    INSERT INTO backtest_equity (backtest_id, ts, equity)
    SELECT :bid, u.t, u.e
    FROM unnest(CAST(:ts AS bigint[]), CAST(:eq AS float8[])) AS u(t, e)
    """
)

# A cheap summary of the candles a backtest read; equal summaries mean unchanged data. Sums
# are numeric, so they are exact whatever order (or parallel plan) Postgres adds them in; the
# time-weighted close sum notices values that merely moved between bars.
_CANDLE_SUMMARY = text(
    """
    SELECT count(*), min(ts), max(ts),
           sum(CAST(open AS numeric)), sum(CAST(high AS numeric)), sum(CAST(low AS numeric)),
           sum(CAST(close AS numeric)), sum(CAST(volume AS numeric)),
           sum(CAST(close AS numeric) * CAST(extract(epoch FROM ts) AS numeric))
    FROM candles
    WHERE instrument_id = :iid AND timeframe = :tf
      AND ts >= to_timestamp(:start / 1000.0) AND ts < to_timestamp(:end / 1000.0)
    """
)


def candles_fingerprint(spec: dict[str, Any]) -> str:
    """SHA-256 of the count, span, column sums and time-weighted close sum under ``spec``."""
    row = db.execute(
        _CANDLE_SUMMARY,
        {
            "iid": spec["instrument_id"],
            "tf": spec["timeframe"],
            "start": spec["start"],
            "end": spec["end"],
        },
    ).one()
    summary = "|".join(repr(v) for v in row)
    return hashlib.sha256(summary.encode()).hexdigest()


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
        db.execute(
            insert(BacktestTrade),
            [
                {"backtest_id": backtest.id, "seq": i, **{k: t[k] for k in TRADE_COLUMNS}}
                for i, t in enumerate(trades, start=1)
            ],
        )
    if len(equity_ts):
        db.execute(
            _INSERT_EQUITY,
            {"bid": backtest.id, "ts": [int(t) for t in equity_ts], "eq": list(equity)},
        )
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
    items = [
        {
            **{k: getattr(t, k) for k in ("seq", *TRADE_COLUMNS)},
            "entry_time": datetime.fromtimestamp(t.entry_ts / 1000, UTC),
            "exit_time": datetime.fromtimestamp(t.exit_ts / 1000, UTC),
        }
        for t in rows
    ]
    return items, total


def equity_count(backtest_id: uuid.UUID) -> int:
    """Bars in the backtest's equity curve."""
    return int(
        db.scalar(
            select(func.count())
            .select_from(BacktestEquity)
            .where(BacktestEquity.backtest_id == backtest_id)
        )
        or 0
    )


def equity_page(backtest_id: uuid.UUID, after_ts: int | None, limit: int) -> list[list[float]]:
    """Up to ``limit`` ``[ts, equity]`` rows after ``after_ts`` (exclusive), oldest first."""
    stmt = (
        select(BacktestEquity.ts, BacktestEquity.equity)
        .where(BacktestEquity.backtest_id == backtest_id)
        .order_by(BacktestEquity.ts)
        .limit(limit)
    )
    if after_ts is not None:
        stmt = stmt.where(BacktestEquity.ts > after_ts)
    return [[int(ts), float(value)] for ts, value in db.execute(stmt)]


def equity_for_chart(backtest_id: uuid.UUID, points: int) -> list[list[float]]:
    """The curve cut into ``points`` equal spans of bars, each given by its last bar.

    The first and last bars are always included; with no more bars than ``points``
    every bar is returned. (Last-of-bucket keeps the curve's shape at chart sizes;
    the drawdown figures come from the full curve, in the metrics.)
    """
    total = equity_count(backtest_id)
    if total <= points:
        return equity_page(backtest_id, None, total or 1)
    rows = db.execute(
        text(
            """
            SELECT ts, equity FROM (
                SELECT ts, equity, row_number() OVER (ORDER BY ts) - 1 AS i
                FROM backtest_equity WHERE backtest_id = :bid
            ) numbered
            WHERE i = 0 OR i = :last
               OR (i + 1) * :points / :total > i * :points / :total
            ORDER BY ts
            """
        ),
        {"bid": backtest_id, "points": points - 1, "total": total, "last": total - 1},
    )
    return [[int(ts), float(value)] for ts, value in rows]
