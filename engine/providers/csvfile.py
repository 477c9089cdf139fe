"""Candles from CSV exports: exchange/ccxt kline dumps and Yahoo-style daily files.

Two layouts are recognised from the first non-blank row:

* ``kline``: a timestamp, then open, high, low, close, volume; further columns (Binance's
  close time, quote volume, trade count, ...) are ignored. The timestamp is epoch
  seconds, milliseconds or microseconds, told apart by magnitude (below 1e11 is
  seconds, below 1e14 milliseconds, below 1e17 microseconds), or ISO 8601 (naive
  means UTC). A header row is optional and is recognised by a first field that is not
  a timestamp; its names are not used, the columns are positional.
* ``yahoo``: a header whose first column is ``Date`` (or ``Datetime``) and that names
  Open, High, Low, Close and Volume (any case, any order; Adj Close is ignored).
  Dates are ``YYYY-MM-DD`` at UTC midnight or ISO datetimes. Rows with a ``null``
  value are skipped and counted.

For daily (or longer) timeframes, an ISO datetime at local midnight with a UTC offset
(as yfinance writes daily bars) stands for its calendar date at UTC midnight; other
datetimes with an offset are converted to UTC.

Rows may come in any order and are sorted; a timestamp appearing twice is an error.
Blank lines are ignored. Fields are split by the stdlib ``csv`` module on commas.
Every bad row is reported with its line number (the first problem of each row), and
duplicates after all row errors; :class:`CsvImportError` lists at most 20.
"""

from __future__ import annotations

import csv
import math
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np

from engine.candles import TIMEFRAMES, Candles
from engine.providers.base import MINUTE_MS

MAX_ROWS = 5_000_000
MAX_LISTED = 20
DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_VALUES = ("open", "high", "low", "close", "volume")


class CsvImportError(ValueError):
    """A CSV file that cannot be imported; ``errors`` lists what is wrong, by line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class CsvImport:
    """An imported file: its candles (sorted, validated), layout and null rows skipped."""

    candles: Candles
    layout: str
    skipped: int


class _Errors:
    """Collects problems, keeping the first MAX_LISTED messages and counting the rest."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.total = 0

    def add(self, message: str) -> None:
        self.total += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(message)

    def add_unlisted(self, count: int) -> None:
        self.total += count

    def raise_any(self) -> None:
        if self.total:
            more = self.total - len(self.listed)
            # Messages were listed first-come; the count covers every problem found.
            raise CsvImportError(self.listed + ([f"... and {more} more"] if more else []))


@dataclass(frozen=True)
class _Layout:
    name: str
    columns: tuple[int, ...]  # time, open, high, low, close, volume
    width: int
    header: bool


def _without_bom(lines: Iterable[str]) -> Iterator[str]:
    iterator = iter(lines)
    for first in iterator:
        yield first.removeprefix("\ufeff")
        break
    yield from iterator


def _iso(ms: int) -> str:
    moment = _EPOCH + timedelta(milliseconds=ms)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def _epoch_ms(value: Decimal, text: str) -> int:
    """Epoch s, ms or us (told apart by magnitude) as ms; raises ValueError saying why not."""
    if not value.is_finite():
        raise ValueError(f"timestamp {text!r} is not finite")
    size = abs(value)
    if size < Decimal("1e11"):
        value *= 1000
    elif size >= Decimal("1e17"):
        raise ValueError(f"timestamp {text!r} is out of range")
    elif size >= Decimal("1e14"):
        value /= 1000
    if value != value.to_integral_value():
        raise ValueError(f"timestamp {text!r} is not a whole millisecond")
    return int(value)


def _iso_ms(text: str, local_dates: bool) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither epoch time nor ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    elif local_dates and moment.timetz().replace(tzinfo=None) == datetime.min.time():
        # yfinance writes daily bars as the exchange's local midnight; the date is the bar.
        moment = moment.replace(tzinfo=UTC)
    elapsed = moment - _EPOCH
    if elapsed.microseconds % 1000:
        raise ValueError(f"timestamp {text!r} is not a whole millisecond")
    return elapsed // timedelta(milliseconds=1)


def _timestamp_ms(text: str, local_dates: bool = False) -> int:
    text = text.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        return _iso_ms(text, local_dates)
    return _epoch_ms(value, text)


def _looks_like_time(text: str) -> bool:
    # Only text that is no kind of timestamp makes a header; a bad number or an
    # unaligned time in the first row is a data row, reported with its line.
    text = text.strip()
    try:
        Decimal(text)
    except InvalidOperation:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return False
    return True


def _detect(row: list[str], line: int) -> _Layout:
    """The layout a file's first row announces; raises CsvImportError when it can't."""
    if _looks_like_time(row[0]):
        if len(row) < 6:
            raise CsvImportError(
                [
                    f"line {line}: expected at least 6 columns (timestamp, {', '.join(_VALUES)})"
                    f", got {len(row)}"
                ]
            )
        return _Layout("kline", (0, 1, 2, 3, 4, 5), len(row), header=False)
    names = [" ".join(cell.strip().lower().replace("_", " ").split()) for cell in row]
    if names[0] in ("date", "datetime") and set(_VALUES) <= set(names):
        return _Layout("yahoo", (0, *(names.index(v) for v in _VALUES)), len(row), header=True)
    if len(row) < 6:
        raise CsvImportError(
            [
                f"line {line}: header has {len(row)} columns;"
                f" expected timestamp, {', '.join(_VALUES)}"
            ]
        )
    return _Layout("kline", (0, 1, 2, 3, 4, 5), len(row), header=True)


def _row_problem(values: list[float], cells: list[str]) -> str | None:
    """Why parsed OHLCV values are invalid, or None."""
    o, h, lo, c, v = values
    for name, value, cell in zip(_VALUES, values, cells, strict=True):
        if not math.isfinite(value):
            return f"{name} {cell.strip()!r} is not finite"
    checks = (
        (lo > o, f"low {lo} is above open {o}"),
        (lo > c, f"low {lo} is above close {c}"),
        (h < o, f"high {h} is below open {o}"),
        (h < c, f"high {h} is below close {c}"),
        (v < 0, f"volume {v} is negative"),
    )
    return next((message for failed, message in checks if failed), None)


def _parse_row(
    row: list[str], layout: _Layout, timeframe_ms: int
) -> tuple[int, list[float]] | str | None:
    """A row's (ts_ms, [o, h, l, c, v]), a message saying why not, or None for a null row."""
    if len(row) != layout.width:
        return f"expected {layout.width} columns, got {len(row)}"
    cells = [row[index] for index in layout.columns]
    if layout.name == "yahoo" and any(cell.strip().lower() == "null" for cell in cells[1:]):
        return None
    try:
        ts = _timestamp_ms(cells[0], local_dates=timeframe_ms % DAY_MS == 0)
    except ValueError as exc:
        return str(exc)
    values = []
    for name, cell in zip(_VALUES, cells[1:], strict=True):
        try:
            values.append(float(cell))
        except ValueError:
            return f"{name} {cell.strip()!r} is not a number"
    problem = _row_problem(values, cells[1:])
    if problem is None and ts % timeframe_ms:
        label = next((k for k, v in TIMEFRAMES.items() if v == timeframe_ms), f"{timeframe_ms} ms")
        problem = f"timestamp {_iso(ts)} is not aligned to the {label} timeframe"
    return problem if problem is not None else (ts, values)


class _Rows:
    """Parsed rows in compact arrays: 56 bytes a row rather than a list of Python floats."""

    def __init__(self) -> None:
        self.stamps = array("q")
        self.numbers = array("d")
        self.lines = array("q")
        self.skipped = 0

    def add(self, ts: int, values: list[float], line: int) -> None:
        self.stamps.append(ts)
        self.numbers.extend(values)
        self.lines.append(line)

    def candles(self, errors: _Errors) -> Candles:
        """The rows sorted by time; duplicate timestamps (and earlier errors) raise."""
        ts = np.frombuffer(self.stamps, dtype=np.int64)
        table = np.frombuffer(self.numbers, dtype=np.float64).reshape(-1, 5)
        lines = np.frombuffer(self.lines, dtype=np.int64)
        # Stable, so among equal timestamps the earlier line comes first.
        order = np.argsort(ts, kind="stable")
        ts, table, lines = ts[order], table[order], lines[order]
        repeats = np.flatnonzero(ts[1:] == ts[:-1]) + 1
        repeats = repeats[np.argsort(lines[repeats], kind="stable")]
        for index in repeats[:MAX_LISTED].tolist():
            errors.add(
                f"line {int(lines[index])}: duplicate timestamp {_iso(int(ts[index]))}"
                f" (also on line {int(lines[index - 1])})"
            )
        errors.add_unlisted(max(0, len(repeats) - MAX_LISTED))
        errors.raise_any()
        candles = Candles(ts, *(table[:, column] for column in range(5)))
        candles.validate()
        return candles


def parse_candles_csv(lines: Iterable[str], timeframe_ms: int) -> CsvImport:
    """Parse a CSV export (lines of text, e.g. an open file) into candles of ``timeframe_ms``.

    Raises CsvImportError listing bad rows by line number, and ValueError when
    ``timeframe_ms`` is not a positive whole number of minutes.
    """
    if timeframe_ms <= 0 or timeframe_ms % MINUTE_MS:
        raise ValueError(f"timeframe_ms must be a positive multiple of 60000, got {timeframe_ms}")
    reader = csv.reader(_without_bom(lines))
    errors, parsed_rows = _Errors(), _Rows()
    layout: _Layout | None = None
    count = 0
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if layout is None:
            layout = _detect(row, reader.line_num)
            if layout.header:
                continue
        count += 1
        if count > MAX_ROWS:
            errors.add(f"line {reader.line_num}: more than {MAX_ROWS:,} data rows; split the file")
            break
        parsed = _parse_row(row, layout, timeframe_ms)
        if parsed is None:
            parsed_rows.skipped += 1
        elif isinstance(parsed, str):
            errors.add(f"line {reader.line_num}: {parsed}")
        else:
            parsed_rows.add(*parsed, reader.line_num)
    if layout is None:
        raise CsvImportError(["the file is empty"])
    if count == 0:
        raise CsvImportError(["the file has a header but no candle rows"])
    if not errors.total and not parsed_rows.stamps:
        raise CsvImportError([f"the file has no candle rows: all {count} rows are null"])
    return CsvImport(parsed_rows.candles(errors), layout.name, parsed_rows.skipped)
