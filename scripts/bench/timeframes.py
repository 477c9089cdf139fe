"""Materialised larger timeframes versus resampling 1m candles on every read.

Usage: .venv/bin/python scripts/bench/timeframes.py [--days 30] [--repeats 30] [--json]

In one scratch database seeded with ``--days`` of 1m history, for each larger timeframe
it times reading a window of bars three ways: the stored (materialised) rows, a SQL
``date_bin`` aggregation over the 1m rows, and reading the 1m rows then resampling in
numpy (``engine.candles.resample``). It also times what materialising costs the feed:
re-deriving every larger bucket that one closed minute touches. Figures are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import psycopg

from engine.candles import Candles, resample
from models import db
from models.market.candles import derive_timeframes, last_candle_ms
from models.market.tables import TIMEFRAME_MS, Instrument

# (timeframe, bars per window): the chart sizes a web app asks for most.
WINDOWS = (("5m", 1000), ("15m", 1000), ("1h", 500), ("4h", 180), ("1d", 30))

MATERIALISED = """
    SELECT CAST(extract(epoch FROM ts) * 1000 AS bigint), open, high, low, close, volume
    FROM candles WHERE instrument_id = %(iid)s AND timeframe = %(tf)s
      AND ts >= to_timestamp(%(start)s / 1000.0) AND ts < to_timestamp(%(end)s / 1000.0)
    ORDER BY ts
"""
SQL_RESAMPLE = """
    SELECT CAST(extract(epoch FROM b) * 1000 AS bigint), (array_agg(open ORDER BY ts))[1],
           max(high), min(low), (array_agg(close ORDER BY ts DESC))[1], sum(volume)
    FROM (SELECT date_bin(CAST(%(step)s AS interval), ts, timestamptz 'epoch') AS b, *
          FROM candles WHERE instrument_id = %(iid)s AND timeframe = '1m'
            AND ts >= to_timestamp(%(start)s / 1000.0)
            AND ts < to_timestamp(%(end)s / 1000.0)) m
    GROUP BY b ORDER BY b
"""


def median_ms(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``func`` in ms (after one warm-up call) and its last result."""
    result = func()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def read_windows(conn: psycopg.Connection[Any], iid: int, end: int, repeats: int) -> list[dict]:
    """Time the three read paths for every window; check they return the same bars."""
    rows = []
    for tf, bars in WINDOWS:
        step = TIMEFRAME_MS[tf]
        params = {"iid": iid, "tf": tf, "start": end - bars * step, "end": end}
        stored_ms, stored = median_ms(
            lambda p=params: conn.execute(MATERIALISED, p).fetchall(), repeats
        )
        sql_params = {**params, "step": f"{step // 1000} seconds"}
        sql_ms, by_sql = median_ms(
            lambda p=sql_params: conn.execute(SQL_RESAMPLE, p).fetchall(), repeats
        )
        minute_params = {**params, "tf": "1m"}

        def numpy_path(p: dict[str, Any] = minute_params, s: int = step) -> Candles:
            return resample(Candles.from_rows(conn.execute(MATERIALISED, p).fetchall()), s)

        numpy_ms, by_numpy = median_ms(numpy_path, repeats)
        if not (len(stored) == len(by_sql) == len(by_numpy)):
            raise harness.BenchError(f"{tf}: the three paths disagree on the number of bars")
        rows.append(
            {
                "timeframe": tf,
                "bars": len(stored),
                "minutes_read": bars * step // 60_000,
                "materialised_ms": stored_ms,
                "sql_resample_ms": sql_ms,
                "numpy_resample_ms": numpy_ms,
                "sql_over_materialised": sql_ms / stored_ms,
                "numpy_over_materialised": numpy_ms / stored_ms,
            }
        )
    return rows


def derive_cost(url: str, repeats: int) -> float:
    """Median ms to re-derive every larger bucket one closed minute touches (one instrument)."""
    db.configure(url)
    instrument = db.session.query(Instrument).filter_by(symbol="BTC-USD").one()
    last = last_candle_ms(instrument.id, "1m") or 0

    def derive() -> None:
        derive_timeframes(instrument, last, last + 60_000)
        db.session.commit()

    cost, _ = median_ms(derive, repeats)
    db.session.remove()
    return cost


def render(report: dict[str, Any]) -> str:
    """The readable report."""
    header = ["timeframe", "bars", "1m read", "stored ms", "SQL ms", "numpy ms", "SQL x", "np x"]
    rows = [
        [
            r["timeframe"],
            r["bars"],
            r["minutes_read"],
            r["materialised_ms"],
            r["sql_resample_ms"],
            r["numpy_resample_ms"],
            r["sql_over_materialised"],
            r["numpy_over_materialised"],
        ]
        for r in report["reads"]
    ]
    lines = [
        f"machine: {report['machine']}",
        f"history: {report['days']} days of 1m candles per instrument; medians of "
        f"{report['repeats']} runs",
        "",
        harness.table("Read a window (x = slower than materialised by)", header, rows),
        f"feed's cost of materialising: {report['derive_ms']:.2f} ms per closed minute per "
        "instrument (all five larger timeframes)",
    ]
    return "\n".join(lines)


def main() -> int:
    """Seed a scratch database, time the read paths and the derive step, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    services = harness.Services.from_env(__import__("os").environ)
    services.check()
    with services.scratch():
        harness.prepare_database(services.app_env(), args.days)
        with psycopg.connect(services.database_url) as conn:
            iid, newest = conn.execute(
                "SELECT i.id, CAST(extract(epoch FROM max(c.ts)) * 1000 AS bigint) "
                "FROM instruments i JOIN candles c ON c.instrument_id = i.id "
                "WHERE i.symbol = 'BTC-USD' AND c.timeframe = '1m' GROUP BY i.id"
            ).fetchone()
            end = (newest + 60_000) // TIMEFRAME_MS["1d"] * TIMEFRAME_MS["1d"]
            reads = read_windows(conn, iid, end, args.repeats)
        derive_ms = derive_cost(services.database_url, args.repeats)
    report = {
        "machine": harness.machine(),
        "days": args.days,
        "repeats": args.repeats,
        "reads": reads,
        "derive_ms": derive_ms,
    }
    harness.emit(report, args.json, render)
    return 0


if __name__ == "__main__":
    harness.run(main)
