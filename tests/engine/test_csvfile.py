"""CSV imports: kline and Yahoo layouts, and every kind of bad file, by line number."""

from __future__ import annotations

import pytest

from engine.providers import csvfile
from engine.providers.csvfile import CsvImport, CsvImportError, parse_candles_csv

M = 60_000
H = 3_600_000
D = 86_400_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def parse(text: str, timeframe_ms: int = M) -> CsvImport:
    return parse_candles_csv(text.splitlines(keepends=True), timeframe_ms)


def errors_of(text: str, timeframe_ms: int = M) -> list[str]:
    with pytest.raises(CsvImportError) as caught:
        parse(text, timeframe_ms)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_ccxt_style_file_with_header_is_sorted() -> None:
    result = parse(
        "timestamp,open,high,low,close,volume\n"
        f"{T0 + M},101.5,102,101,101.75,3.5\n"
        f"{T0},100,101.5,99.5,101.5,12.25\n"
    )
    assert (result.layout, result.skipped) == ("kline", 0)
    assert result.candles.to_rows() == [
        [T0, 100.0, 101.5, 99.5, 101.5, 12.25],
        [T0 + M, 101.5, 102.0, 101.0, 101.75, 3.5],
    ]


BINANCE_MS = (
    "1704067200000,42283.58,42554.57,42261.02,42475.23,1271.68108,1704070799999,"
    "53957248.973789,47134,682.57581,28957416.819645,0\n"
    "1704070800000,42475.23,42775.00,42431.65,42613.56,1196.37856,1704074399999,"
    "50984244.130290,44363,628.25785,26777220.592497,0\n"
)
BINANCE_ROWS = [
    [T0, 42283.58, 42554.57, 42261.02, 42475.23, 1271.68108],
    [T0 + H, 42475.23, 42775.0, 42431.65, 42613.56, 1196.37856],
]


def test_headerless_binance_klines_in_milliseconds() -> None:
    result = parse(BINANCE_MS, H)
    assert (result.layout, result.skipped) == ("kline", 0)
    assert result.candles.to_rows() == BINANCE_ROWS


def test_headerless_binance_klines_in_microseconds() -> None:
    micros = BINANCE_MS.replace("1704067200000,", "1704067200000000,").replace(
        "1704070800000,", "1704070800000000,"
    )
    assert micros != BINANCE_MS
    assert parse(micros, H).candles.to_rows() == BINANCE_ROWS


def test_seconds_and_iso_timestamps() -> None:
    result = parse(
        "\ufeff1704067200,1,2,0.5,1.5,10\r\n"
        "\r\n"
        "2024-01-01T00:01:00Z,1.5,2,1,1,0\r\n"
        "2024-01-01 00:02:00,1,1,1,1,0\r\n"
        "2024-01-01T01:03:00+01:00,1,1,1,1,0\r\n"
    )
    assert result.candles.ts.tolist() == [T0, T0 + M, T0 + 2 * M, T0 + 3 * M]


def test_yahoo_daily_file_skips_null_rows() -> None:
    result = parse(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,187.15,188.44,183.89,185.64,184.94,82488700\n"
        "2024-01-03,null,null,null,null,null,null\n"
        "2024-01-04,182.15,183.09,180.88,181.91,181.22,71983600\n",
        D,
    )
    assert (result.layout, result.skipped) == ("yahoo", 1)
    assert result.candles.to_rows() == [
        [T0 + D, 187.15, 188.44, 183.89, 185.64, 82488700.0],
        [T0 + 3 * D, 182.15, 183.09, 180.88, 181.91, 71983600.0],
    ]


def test_yahoo_headers_match_by_name_and_local_midnights_are_dates() -> None:
    result = parse(
        "date,open,high,low,close,volume,adj_close\n"
        "2024-01-02 00:00:00-05:00,10,12,9,11,100,10.5\n"
        "2024-01-03 00:00:00+09:00,11,12,10,11.5,0,11\n",
        D,
    )
    assert result.layout == "yahoo"
    assert result.candles.to_rows() == [
        [T0 + D, 10.0, 12.0, 9.0, 11.0, 100.0],
        [T0 + 2 * D, 11.0, 12.0, 10.0, 11.5, 0.0],
    ]


def test_yahoo_intraday_datetimes_are_converted_to_utc() -> None:
    result = parse("Datetime,Open,High,Low,Close,Volume\n2024-01-01 09:00:00+09:00,1,1,1,1,5\n", H)
    assert result.candles.ts.tolist() == [T0]


GOOD = f"{T0},100,101,99,100.5,10\n"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"{T0 + M},100,101,99,100.5\n", "line 2: expected 6 columns, got 5"),
        (f"{T0 + M},100,101,99,abc,10\n", "line 2: close 'abc' is not a number"),
        (f"{T0 + M},100,inf,99,100.5,10\n", "line 2: high 'inf' is not finite"),
        (f"{T0 + M},100,101,99,100.5,-5\n", "line 2: volume -5.0 is negative"),
        (f"{T0 + M},102,101,99,100.5,1\n", "line 2: high 101.0 is below open 102.0"),
        (f"{T0 + M},100,101,99,101.5,1\n", "line 2: high 101.0 is below close 101.5"),
        (f"{T0 + M},100,101,100.2,100.5,1\n", "line 2: low 100.2 is above open 100.0"),
        (f"{T0 + M},100.5,101,100.2,100,1\n", "line 2: low 100.2 is above close 100.0"),
        (
            f"{T0 + 30_000},100,101,99,100.5,1\n",
            "line 2: timestamp 2024-01-01T00:00:30Z is not aligned to the 1m timeframe",
        ),
        (
            f"{T0 + M}500,100,101,99,100.5,1\n",
            "line 2: timestamp '1704067260000500' is not a whole millisecond",
        ),
        ("yesterday,100,101,99,100.5,1\n", "line 2: timestamp 'yesterday' is neither epoch time"),
        (f"{T0 // 1000},100,101,99,100.5,1\n", "line 2: duplicate timestamp 2024-01-01T00:00:00Z"),
    ],
)
def test_bad_rows_are_reported_by_line(row: str, message: str) -> None:
    errors = errors_of(GOOD + row)
    assert len(errors) == 1
    assert errors[0].startswith(message)


def test_every_bad_row_is_listed_in_line_order_with_duplicates_last() -> None:
    text = (
        "timestamp,open,high,low,close,volume\n"
        f"{T0 + M},1,2,0.5,1,1\n"
        f"{T0},1,2,3,1,1\n"
        f"{T0 + 2 * M},1,2,0.5,1,1\n"
        "\n"
        f"{T0 + M},1,2,0.5,1,1\n"
        f"{T0 + 3 * M},1,2,0.5,1\n"
    )
    assert errors_of(text) == [
        "line 3: low 3.0 is above open 1.0",
        "line 7: expected 6 columns, got 5",
        "line 6: duplicate timestamp 2024-01-01T00:01:00Z (also on line 2)",
    ]


def test_at_most_twenty_errors_are_listed() -> None:
    text = GOOD + "".join(f"{T0 + i * M},1,2,3,1,1\n" for i in range(1, 26))
    errors = errors_of(text)
    assert len(errors) == 21
    assert errors[0] == "line 2: low 3.0 is above open 1.0"
    assert errors[19].startswith("line 21: ")
    assert errors[20] == "... and 5 more"


def test_aligned_to_larger_timeframes() -> None:
    assert errors_of(GOOD + f"{T0 + M},1,2,0.5,1,1\n", H) == [
        "line 2: timestamp 2024-01-01T00:01:00Z is not aligned to the 1h timeframe"
    ]
    assert errors_of("Date,Open,High,Low,Close,Volume\n2024-01-02T12:00:00,1,1,1,1,1\n", D) == [
        "line 2: timestamp 2024-01-02T12:00:00Z is not aligned to the 1d timeframe"
    ]
    assert errors_of(f"{T0 + M},1,1,1,1,1\n", 2 * M) == [
        "line 1: timestamp 2024-01-01T00:01:00Z is not aligned to the 120000 ms timeframe"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\n\n", "the file is empty"),
        ("timestamp,open,high,low,close,volume\n", "the file has a header but no candle rows"),
        (
            "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,null,null,null,null,null,null\n",
            "the file has no candle rows: all 1 rows are null",
        ),
        (f"{T0},1,2,0.5,1\n", "line 1: expected at least 6 columns (timestamp, open, high"),
        ("\ntime,price\n", "line 2: header has 2 columns; expected timestamp, open, high"),
    ],
)
def test_files_without_candles(text: str, message: str) -> None:
    errors = errors_of(text)
    assert len(errors) == 1 and errors[0].startswith(message)


def test_row_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "MAX_ROWS", 3)
    text = "ts,o,h,l,c,v\n" + "".join(f"{T0 + i * M},1,1,1,1,1\n" for i in range(4))
    assert errors_of(text) == ["line 5: more than 3 data rows; split the file"]
    assert len(parse(text.rsplit("\n", 2)[0]).candles) == 3


def test_timeframe_must_be_whole_minutes() -> None:
    with pytest.raises(ValueError, match="positive multiple of 60000"):
        parse(GOOD, 30_000)
    with pytest.raises(ValueError, match="positive multiple of 60000"):
        parse(GOOD, 0)


def test_a_bad_first_row_is_data_not_a_header() -> None:
    assert errors_of(f"{T0 + 30_000},1,2,0.5,1,1\n{T0 + M},1,2,0.5,1,1\n") == [
        "line 1: timestamp 2024-01-01T00:00:30Z is not aligned to the 1m timeframe"
    ]
    assert errors_of(f"{T0}500,1,2,0.5,1,1\n") == [
        "line 1: timestamp '1704067200000500' is not a whole millisecond"
    ]
