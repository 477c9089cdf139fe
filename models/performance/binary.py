"""Fixed-width, NOT NULL columns to and from Postgres in bulk, as numpy structured arrays.

Both directions move one packed buffer of big-endian values (Postgres' binary send
format) that one numpy dtype reads or writes, never a Python object per value:

- :func:`fetch` reads rows as ``string_agg(send(a) || send(b) || ..., '')``: one bytea
  for the whole result. Measured on 910,000 day rows (2 cores): ~1.7 s, where the
  same rows through ``COPY ... TO STDOUT (FORMAT BINARY)`` take ~3.5-4 s, nearly all of
  it psycopg's per-row cost (one CopyData message a row), and text arrays ~8 s.
- :func:`copy_in` writes through ``COPY ... FROM STDIN (FORMAT BINARY)``: a 19-byte
  header, per row an int16 field count and per field an int32 length and the value, a
  2-byte trailer; one ``write`` of the whole stream.

A NULL, or a value of another type, makes the data not fit the layout: ``ValueError``
rather than a misread. Both run on the session's own connection, in its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.db import raw_connection

# Postgres type -> (numpy type of its binary send format, the send function).
WIRE = {
    "int2": (">i2", "int2send"),
    "int4": (">i4", "int4send"),
    "int8": (">i8", "int8send"),
    "float8": (">f8", "float8send"),
    "uuid": ("V16", "uuid_send"),
}
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + bytes(8)  # no flags, no header extension
COPY_TRAILER = b"\xff\xff"


def packed_dtype(columns: Sequence[tuple[str, str]]) -> np.dtype[Any]:
    """The values of a row of ``(name, postgres type)`` columns, back to back."""
    return np.dtype([(name, WIRE[pg_type][0]) for name, pg_type in columns])


def copy_dtype(columns: Sequence[tuple[str, str]]) -> np.dtype[Any]:
    """A row of a binary COPY stream: field count, then a length before each value."""
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for name, pg_type in columns:
        fields += [(f"_len_{name}", ">i4"), (name, WIRE[pg_type][0])]
    return np.dtype(fields)


def fetch(
    columns: Sequence[tuple[str, str, str]], from_clause: str, params: Any = None
) -> np.ndarray:
    """Rows of ``(name, postgres type, SQL expression)`` columns ``FROM from_clause``.

    In no particular order; ``params`` are psycopg's (``%s`` placeholders).
    """
    row = " || ".join(f"{WIRE[pg_type][1]}({expr})" for _, pg_type, expr in columns)
    # The callers' own constant SQL; the values travel as parameters.
    statement = f"SELECT count(*), string_agg({row}, ''::bytea) FROM "  # noqa: S608
    with raw_connection().cursor(binary=True) as cursor:
        cursor.execute(statement + from_clause, params)
        count, data = cursor.fetchone()
    return unpack(data or b"", int(count), [(name, pg_type) for name, pg_type, _ in columns])


def unpack(data: bytes, count: int, columns: Sequence[tuple[str, str]]) -> np.ndarray:
    """``count`` packed rows; ``ValueError`` when the data does not hold exactly that."""
    dtype = packed_dtype(columns)
    if len(data) != count * dtype.itemsize:
        raise ValueError("packed rows do not match the columns (a NULL, or another type)")
    return np.frombuffer(data, dtype=dtype)


def copy_in(table: str, columns: Sequence[tuple[str, str]], values: dict[str, Any], n: int) -> None:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)`` of ``n`` rows of ``values``.

    ``values[name]`` is an array of ``n`` values (or one value for all rows).
    """
    names = ", ".join(name for name, _ in columns)
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    with raw_connection().cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(pack_copy(values, columns, n))


def pack_copy(values: dict[str, Any], columns: Sequence[tuple[str, str]], n: int) -> bytes:
    """The binary COPY stream of ``n`` rows of ``values``."""
    rows = np.zeros(n, dtype=copy_dtype(columns))
    rows["_count"] = len(columns)
    for name, pg_type in columns:
        rows[f"_len_{name}"] = np.dtype(WIRE[pg_type][0]).itemsize
        rows[name] = values[name]
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER
