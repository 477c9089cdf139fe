"""Fixed-width, NOT NULL columns to and from Postgres in bulk, as numpy structured arrays.

Both directions use ``COPY ... (FORMAT BINARY)``, whose rows of fixed-width values one numpy
dtype reads or writes (:func:`copy_dtype`), never a Python object per value:

- :func:`fetch` reads ``COPY (SELECT ...) TO STDOUT``. The server sends one CopyData
  message a row; psycopg's ``Copy`` iterator costs about 1 µs of Python per message, so
  the messages are drained through libpq directly (``PGconn.get_copy_data``), which halves
  the client's share. Measured on 900,000 day rows (2 cores): ~0.75 s, against ~1.0 s
  through psycopg's iterator, ~1.7 s for one ``string_agg`` of the packed rows (the
  server's per-row ``send()`` calls) and ~5 s for ``fetchall()``.
- :func:`copy_in` writes ``COPY ... FROM STDIN``: a 19-byte header, per row an int16 field
  count and per field an int32 length and the value, a 2-byte trailer; one ``write`` of
  the whole stream.

A NULL (length -1), or a value of another width, makes a row not fit the layout:
``ValueError`` rather than a misread. Both run on the session's own connection, in its
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import pq

from models.db import raw_connection

# Postgres type -> the numpy type of its binary format (big-endian).
WIRE = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "uuid": "V16"}
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
COPY_HEADER = COPY_SIGNATURE + bytes(8)  # no flags, no header extension
COPY_TRAILER = b"\xff\xff"


def copy_dtype(columns: Sequence[tuple[str, str]]) -> np.dtype[Any]:
    """A row of a binary COPY stream: field count, then a length before each value."""
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for name, pg_type in columns:
        fields += [(f"_len_{name}", ">i4"), (name, WIRE[pg_type])]
    return np.dtype(fields)


def fetch(
    columns: Sequence[tuple[str, str, str]], from_clause: str, params: Any = None
) -> np.ndarray:
    """Rows of ``(name, postgres type, SQL expression)`` columns ``FROM from_clause``.

    In no particular order; ``params`` are psycopg's (``%s`` placeholders), bound on the
    client because COPY takes no parameters.
    """
    conn = raw_connection()
    # The callers' own constant SQL; the values travel as parameters.
    select = f"SELECT {', '.join(expr for _, _, expr in columns)} FROM {from_clause}"  # noqa: S608
    with psycopg.ClientCursor(conn) as cursor:
        query = cursor.mogrify(select, params)
        if conn.info.transaction_status == pq.TransactionStatus.IDLE:
            cursor.execute("SELECT 1")  # psycopg opens the transaction the read belongs to
    data = _copy_out(conn, f"COPY ({query}) TO STDOUT (FORMAT BINARY)".encode())
    return unpack_copy(data, [(name, pg_type) for name, pg_type, _ in columns])


def _copy_out(conn: psycopg.Connection[Any], statement: bytes) -> bytes:
    """The whole binary COPY stream of ``statement``, drained through libpq."""
    pgconn = conn.pgconn
    pgconn.send_query(statement)
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        _drain(pgconn)
        raise _error(result, conn)
    chunks = []
    while True:
        nbytes, data = pgconn.get_copy_data(0)  # blocks until a row (or the end) arrives
        if nbytes < 0:
            break
        chunks.append(bytes(data))
    final = pgconn.get_result()
    _drain(pgconn)
    if nbytes == -2 or final is None or final.status != pq.ExecStatus.COMMAND_OK:
        raise _error(final, conn)
    return b"".join(chunks)


def _drain(pgconn: Any) -> None:
    """Read the results left, so the connection is ready for the next command."""
    while pgconn.get_result() is not None:
        pass


def _error(result: Any, conn: psycopg.Connection[Any]) -> Exception:
    if result is None:
        return psycopg.OperationalError("the COPY ended without a result")
    return psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


def unpack_copy(data: bytes, columns: Sequence[tuple[str, str]]) -> np.ndarray:
    """The rows of a binary COPY stream; ``ValueError`` unless each is exactly ``columns``."""
    if not data.startswith(COPY_HEADER) or not data.endswith(COPY_TRAILER):
        raise ValueError("not a binary COPY stream without header extensions")
    body = memoryview(data)[len(COPY_HEADER) : len(data) - len(COPY_TRAILER)]
    dtype = copy_dtype(columns)
    if len(body) % dtype.itemsize:
        raise ValueError("COPY rows do not match the columns (a NULL, or another type)")
    rows = np.frombuffer(body, dtype=dtype)
    fits = rows["_count"] == len(columns)
    for name, pg_type in columns:
        fits &= rows[f"_len_{name}"] == np.dtype(WIRE[pg_type]).itemsize
    if not bool(fits.all()):
        raise ValueError("COPY rows do not match the columns (a NULL, or another type)")
    return rows[[name for name, _ in columns]]


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
        rows[f"_len_{name}"] = np.dtype(WIRE[pg_type]).itemsize
        rows[name] = values[name]
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER
