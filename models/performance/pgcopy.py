"""Postgres binary COPY of fixed-width, NOT NULL columns to and from numpy structured arrays.

The binary format (https://www.postgresql.org/docs/current/sql-copy.html): a 19-byte header
(11-byte signature, int32 flags, int32 length of a header extension that follows), then per
row an int16 field count and, per field, an int32 length and the value in network byte
order; an int16 -1 ends the data. When every column has a fixed width and no NULL, every
row has the same layout, so the whole body is one numpy structured array: one
``frombuffer`` reads it, one ``tobytes`` writes it. Rows that do not fit the layout (a
NULL, a wrong type) raise ``ValueError`` rather than being misread.

Only through the session's own connection, so the COPY runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.db import session as db

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + bytes(8)  # no flags, no header extension
TRAILER = b"\xff\xff"

# Postgres type -> numpy type of its binary send format (big-endian).
WIRE = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float8": ">f8",
    "uuid": "V16",
}


def row_dtype(columns: Sequence[tuple[str, str]]) -> np.dtype[Any]:
    """The packed wire layout of a row of ``(name, postgres type)`` columns."""
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for name, pg_type in columns:
        fields += [(f"_len_{name}", ">i4"), (name, WIRE[pg_type])]
    return np.dtype(fields)


def parse(data: bytes, columns: Sequence[tuple[str, str]]) -> np.ndarray:
    """The rows of a binary COPY stream as a structured array (wire byte order)."""
    dtype = row_dtype(columns)
    if len(data) < len(HEADER) + len(TRAILER) or data[: len(SIGNATURE)] != SIGNATURE:
        raise ValueError("not a binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    start = len(HEADER) + extension
    if data[-len(TRAILER) :] != TRAILER:
        raise ValueError("binary COPY stream without its trailer")
    body = memoryview(data)[start : len(data) - len(TRAILER)]
    if len(body) % dtype.itemsize:
        raise ValueError("binary COPY rows do not match the expected columns")
    rows = np.frombuffer(body, dtype=dtype)
    if len(rows) and not (rows["_count"] == len(columns)).all():
        raise ValueError("binary COPY rows have an unexpected field count")
    for name, pg_type in columns:
        size = np.dtype(WIRE[pg_type]).itemsize
        if len(rows) and not (rows[f"_len_{name}"] == size).all():
            raise ValueError(f"binary COPY column {name!r} is NULL or of another type")
    return rows


def pack(values: dict[str, Any], columns: Sequence[tuple[str, str]], n: int) -> bytes:
    """A binary COPY stream of ``n`` rows; ``values[name]`` is an array (or scalar) per column."""
    rows = np.zeros(n, dtype=row_dtype(columns))
    rows["_count"] = len(columns)
    for name, pg_type in columns:
        rows[f"_len_{name}"] = np.dtype(WIRE[pg_type]).itemsize
        rows[name] = values[name]
    return HEADER + rows.tobytes() + TRAILER


def _raw() -> Any:
    """The session's psycopg connection, inside the session's current transaction."""
    return db.connection().connection.driver_connection


def copy_out(query: str, columns: Sequence[tuple[str, str]]) -> np.ndarray:
    """``COPY (query) TO STDOUT (FORMAT BINARY)``, parsed; ``query`` holds no parameters."""
    statement = f"COPY ({query}) TO STDOUT (FORMAT BINARY)"
    with _raw().cursor() as cursor, cursor.copy(statement) as copy:
        data = b"".join(copy)
    return parse(data, columns)


def copy_in(table: str, columns: Sequence[tuple[str, str]], data: bytes) -> None:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)`` of a stream made by :func:`pack`."""
    names = ", ".join(name for name, _ in columns)
    statement = f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)"
    with _raw().cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(data)
