"""`flask market import-csv`: good files become candles (and derived timeframes); bad ones don't."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, text

from models.market.cache import chunk_key
from models.market.tables import Instrument

H = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

KLINES = "timestamp,open,high,low,close,volume\n" + "".join(
    f"{T0 + i * 300_000},{100 + i},{101 + i},{99 + i},{100.5 + i},{10 * (i + 1)}\n"
    for i in range(24)  # two hours of 5m bars
)

YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2025-12-29,10.0,11.0,9.5,10.5,10.4,1000
2025-12-30,null,null,null,null,null,null
2025-12-31,10.5,12.0,10.1,11.75,11.6,2000
"""


def run_import(app: Flask, tmp_path: Path, content: str, *args: str) -> Any:
    path = tmp_path / "candles.csv"
    path.write_text(content)
    return app.test_cli_runner().invoke(args=["market", "import-csv", str(path), *args])


def test_kline_file_creates_an_instrument_with_derived_timeframes(
    app: Flask, client: FlaskClient, db: Any, tmp_path: Path
) -> None:
    result = run_import(app, tmp_path, KLINES, "--symbol", "acme-usd", "--timeframe", "5m")
    assert result.exit_code == 0, result.output
    assert "imported 24 5m candles (kline layout" in result.output

    acme = db.scalars(select(Instrument).where(Instrument.symbol == "ACME-USD")).one()
    assert (acme.provider, acme.base_timeframe, acme.price_precision) == ("csv", "5m", 1)
    assert acme.timeframes() == ["5m", "15m", "1h", "4h", "1d"]

    body = client.get(
        f"/api/v1/market/instruments/ACME-USD/candles?timeframe=1h&start={T0}&end={T0 + 2 * H}"
    ).json
    assert body["rows"] == [
        [T0, 100.0, 112.0, 99.0, 111.5, sum(10 * (i + 1) for i in range(12))],
        [T0 + H, 112.0, 124.0, 111.0, 123.5, sum(10 * (i + 1) for i in range(12, 24))],
    ]
    # 1m is below this instrument's base timeframe.
    below = client.get("/api/v1/market/instruments/ACME-USD/candles?timeframe=1m")
    assert below.status_code == 422 and "served in 5m" in below.json["message"]

    # Importing the same file again rewrites the same rows.
    again = run_import(app, tmp_path, KLINES, "--symbol", "ACME-USD", "--timeframe", "5m")
    assert again.exit_code == 0 and "existing instrument" in again.output
    count = db.scalar(
        text("SELECT count(*) FROM candles WHERE instrument_id = :i AND timeframe = '5m'"),
        {"i": acme.id},
    )
    assert count == 24


def test_yahoo_daily_file_skips_null_rows_and_invalidates_the_cache(
    app: Flask, client: FlaskClient, db: Any, redis: Redis, tmp_path: Path
) -> None:
    result = run_import(app, tmp_path, YAHOO, "--symbol", "XYZ-USD", "--timeframe", "1d")
    assert result.exit_code == 0, result.output
    assert "imported 2 1d candles (yahoo layout, 1 empty row(s) skipped)" in result.output
    url = (
        f"/api/v1/market/instruments/XYZ-USD/candles?timeframe=1d&start={T0 - 3 * 24 * H}&end={T0}"
    )
    assert [r[4] for r in client.get(url).json["rows"]] == [10.5, 11.75]
    chunk = chunk_key("XYZ-USD", "1d", (T0 - 3 * 24 * H) // (24 * H * 1000))
    assert redis.exists(chunk)

    fixed = YAHOO.replace("11.75,11.6", "11.5,11.4")
    assert (
        run_import(app, tmp_path, fixed, "--symbol", "XYZ-USD", "--timeframe", "1d").exit_code == 0
    )
    assert not redis.exists(chunk)
    assert [r[4] for r in client.get(url).json["rows"]] == [10.5, 11.5]


def test_bad_files_are_refused_with_line_numbers_and_store_nothing(
    app: Flask, db: Any, tmp_path: Path
) -> None:
    bad = KLINES.replace(f"{T0 + 300_000},101,102,", f"{T0 + 300_000},101,100.5,", 1)
    bad = bad.replace(f"{T0 + 600_000},102,", f"{T0 + 600_000},abc,", 1)
    result = run_import(app, tmp_path, bad, "--symbol", "BAD-USD", "--timeframe", "5m")
    assert result.exit_code != 0
    assert "line 3" in result.output and "line 4" in result.output
    assert db.scalars(select(Instrument).where(Instrument.symbol == "BAD-USD")).first() is None

    empty = run_import(app, tmp_path, "", "--symbol", "BAD-USD", "--timeframe", "5m")
    assert empty.exit_code != 0 and "empty" in empty.output.lower()

    run_import(app, tmp_path, KLINES, "--symbol", "MIX-USD", "--timeframe", "5m")
    mixed = run_import(app, tmp_path, YAHOO, "--symbol", "MIX-USD", "--timeframe", "1d")
    assert mixed.exit_code != 0 and "stores 5m candles" in mixed.output

    no_quote = run_import(app, tmp_path, KLINES, "--symbol", "ACME", "--timeframe", "5m")
    assert no_quote.exit_code != 0 and "BASE-QUOTE" in no_quote.output
