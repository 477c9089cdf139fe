"""Candles: rows in and out, validation, slicing and OHLCV resampling."""

from __future__ import annotations

import numpy as np
import pytest

from engine.candles import TIMEFRAMES, CandleError, Candles, _first_problem, resample

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
M = 60_000

# Seven 1m bars: minutes 2-4 fall in the 00:00 5m bucket, 5, 6, 8 and 9 in the 00:05
# one; minute 7 is missing.
ROWS = [
    [T0 + 2 * M, 10.0, 12.0, 9.0, 11.0, 1.0],
    [T0 + 3 * M, 11.0, 13.0, 10.0, 12.0, 2.0],
    [T0 + 4 * M, 12.0, 12.5, 8.0, 9.0, 3.0],
    [T0 + 5 * M, 9.0, 10.0, 7.0, 8.0, 4.0],
    [T0 + 6 * M, 8.0, 15.0, 8.0, 14.0, 0.5],
    [T0 + 8 * M, 14.0, 14.0, 13.0, 13.5, 1.5],
    [T0 + 9 * M, 13.5, 16.0, 13.0, 15.0, 2.0],
]


def bars() -> Candles:
    return Candles.from_rows(ROWS)


def test_timeframes() -> None:
    assert TIMEFRAMES == {
        "1m": 60_000,
        "5m": 300_000,
        "15m": 900_000,
        "1h": 3_600_000,
        "4h": 14_400_000,
        "1d": 86_400_000,
    }


def test_resample_into_5m_buckets_with_a_missing_minute() -> None:
    assert resample(bars(), 5 * M).to_rows() == [
        [T0, 10.0, 13.0, 8.0, 9.0, 6.0],
        [T0 + 5 * M, 9.0, 16.0, 7.0, 15.0, 8.0],
    ]


def test_resample_buckets_align_to_the_epoch_not_the_first_row() -> None:
    assert resample(bars(), 15 * M).to_rows() == [[T0, 10.0, 16.0, 7.0, 15.0, 14.0]]
    # 3m buckets: 00:00 (minute 2), 00:03 (3-5), 00:06 (6, 8), 00:09 (9).
    assert resample(bars(), 3 * M).to_rows() == [
        [T0, 10.0, 12.0, 9.0, 11.0, 1.0],
        [T0 + 3 * M, 11.0, 13.0, 7.0, 8.0, 9.0],
        [T0 + 6 * M, 8.0, 15.0, 8.0, 13.5, 2.0],
        [T0 + 9 * M, 13.5, 16.0, 13.0, 15.0, 2.0],
    ]


def test_resample_at_the_input_step_changes_nothing() -> None:
    assert resample(bars(), M) == bars()


def test_resample_edge_cases() -> None:
    assert len(resample(Candles.empty(), 5 * M)) == 0
    with pytest.raises(CandleError, match="step_ms must be positive"):
        resample(bars(), 0)
    shuffled = Candles.from_rows([ROWS[1], ROWS[0]])
    with pytest.raises(CandleError, match="strictly increasing"):
        resample(shuffled, 5 * M)


def test_rows_round_trip_with_python_types() -> None:
    rows = bars().to_rows()
    assert rows == ROWS
    assert all(type(row[0]) is int for row in rows)
    assert all(type(value) is float for row in rows for value in row[1:])
    assert Candles.from_rows(rows) == bars()
    assert Candles.from_rows([]).to_rows() == []
    assert len(Candles.empty()) == 0 and len(bars()) == 7


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[T0, 1.0, 2.0, 0.5, 1.5]], "six numbers"),
        ([[T0, 1.0, 2.0, 0.5, 1.5, 1.0], [T0 + M, 1.0]], "six numbers"),
        ([[T0 + 0.5, 1.0, 2.0, 0.5, 1.5, 1.0]], "whole epoch milliseconds"),
    ],
)
def test_from_rows_rejects_malformed_rows(rows: list[list[float]], message: str) -> None:
    with pytest.raises(CandleError, match=message):
        Candles.from_rows(rows)


def test_columns_are_read_only_and_must_match_in_length() -> None:
    candles = bars()
    with pytest.raises(ValueError, match="read-only"):
        candles.close[0] = 1.0
    mine = np.array([1.0, 2.0])
    Candles(np.array([0, 1]), mine, mine, mine, mine, mine)
    mine[0] = 5.0  # freezing the candles' view leaves the caller's array writable
    with pytest.raises(CandleError, match="differ in length"):
        Candles(np.array([0]), mine, mine, mine, mine, mine)


def test_valid_candles_pass() -> None:
    assert _first_problem(bars()) is None
    assert _first_problem(Candles.empty()) is None
    bars().validate()  # and so validate() does not raise


@pytest.mark.parametrize(
    ("index", "column", "value", "message"),
    [
        (1, 1, float("nan"), "open nan is not finite"),
        (3, 5, float("inf"), "volume inf is not finite"),
        (2, 3, 12.5, "low 12.5 is above open 12.0"),
        (2, 3, 10.0, "low 10.0 is above close 9.0"),
        (4, 2, 13.0, "high 13.0 is below close 14.0"),
        (5, 2, 13.8, "high 13.8 is below open 14.0"),
        (6, 5, -0.1, "volume -0.1 is negative"),
        (3, 0, T0 + 4 * M, f"ts is not after the previous ts {T0 + 4 * M}"),
        (3, 0, T0 + 3 * M, f"ts is not after the previous ts {T0 + 4 * M}"),
    ],
)
def test_validate_names_the_first_bad_row(
    index: int, column: int, value: float, message: str
) -> None:
    rows = [list(row) for row in ROWS]
    rows[index][column] = value
    candles = Candles.from_rows(rows)
    with pytest.raises(CandleError) as caught:
        candles.validate()
    assert str(caught.value) == f"candle {index} (ts {int(rows[index][0])}): {message}"


def test_validate_reports_the_earliest_of_several_problems() -> None:
    rows = [list(row) for row in ROWS]
    rows[5][5] = -1.0
    rows[1][3] = 99.0
    with pytest.raises(CandleError, match=r"^candle 1 .*low 99.0 is above open 11.0$"):
        Candles.from_rows(rows).validate()


def test_between_is_half_open() -> None:
    assert [row[0] for row in bars().between(T0 + 3 * M, T0 + 8 * M).to_rows()] == [
        T0 + 3 * M,
        T0 + 4 * M,
        T0 + 5 * M,
        T0 + 6 * M,
    ]
    assert bars().between(T0 + 7 * M, T0 + 8 * M).to_rows() == []
    assert bars().between(T0 + 9 * M, T0 + 2 * M).to_rows() == []
    assert bars().between(0, 2**62) == bars()


def test_equality_compares_values() -> None:
    assert bars() == Candles.from_rows(ROWS)
    assert bars() != Candles.from_rows(ROWS[:-1])
    assert bars() != "candles"


def test_slice_is_a_read_only_view_of_the_positions() -> None:
    rows = [[t * 60_000, 10.0 + t, 12.0 + t, 9.0 + t, 11.0 + t, 1.0] for t in range(6)]
    candles = Candles.from_rows(rows)
    part = candles.slice(2, 5)
    assert part == Candles.from_rows(rows[2:5])
    assert part.ts.tolist() == [120_000, 180_000, 240_000]
    assert not part.close.flags.writeable and np.shares_memory(part.close, candles.close)
    assert len(candles.slice(4, 4)) == 0
