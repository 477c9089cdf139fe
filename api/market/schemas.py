"""Query and response schemas of the market area."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import marshmallow as ma
from werkzeug.datastructures import MultiDict

from api.pagination import page_schema
from api.schemas import OutSchema, PageQuery, StrictSchema, Timestamp, one_of, timeframe_enum
from models.market.tables import TIMEFRAME_MS

MAX_LIMIT = 5000
DEFAULT_LIMIT = 500
MAX_RANGE_BARS = 100_000
INSTRUMENT_KINDS = ("crypto", "fx", "equity")


def encode_cursor(next_ts: int, end: int) -> str:
    """An opaque cursor: where the next page starts and where the range ends."""
    return base64.urlsafe_b64encode(f"{next_ts}:{end}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Inverse of :func:`encode_cursor`; ValidationError on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        next_ts, end = (int(part) for part in raw.split(":"))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ma.ValidationError("Invalid cursor; use next_cursor from a previous page.") from exc
    return next_ts, end


class InstrumentQuery(PageQuery):
    """Filter instruments."""

    q = ma.fields.String(validate=ma.validate.Length(max=25))
    kind = ma.fields.String(**one_of(INSTRUMENT_KINDS))
    active = ma.fields.Boolean()


class InstrumentOut(OutSchema):
    """An instrument and the timeframes it is served in."""

    symbol = ma.fields.String()
    provider = ma.fields.String()
    kind = ma.fields.String(**one_of(INSTRUMENT_KINDS))
    base = ma.fields.String()
    quote = ma.fields.String()
    price_precision = ma.fields.Integer()
    size_precision = ma.fields.Integer()
    fractional = ma.fields.Boolean()
    base_timeframe = ma.fields.String(**timeframe_enum())
    timeframes = ma.fields.Method(
        "_timeframes",
        metadata={
            "type": "array",
            "items": {"type": "string", **timeframe_enum()["metadata"], "enum": list(TIMEFRAME_MS)},
            "description": "the base timeframe and every larger one",
        },
    )
    active = ma.fields.Boolean()

    def _timeframes(self, obj: Any) -> list[str]:
        return list(obj.timeframes())


InstrumentPageOut = page_schema(InstrumentOut, "InstrumentPage")


class QuoteOut(OutSchema):
    """Last price and 24-hour statistics."""

    symbol = ma.fields.String()
    price = ma.fields.Float()
    ts = ma.fields.Integer(metadata={"description": "Epoch ms of the price"})
    change_24h = ma.fields.Float()
    change_24h_pct = ma.fields.Float(allow_none=True)
    high_24h = ma.fields.Float()
    low_24h = ma.fields.Float()
    volume_24h = ma.fields.Float()


def range_too_long(start: int, end: int, timeframe: str) -> str | None:
    """The message when [start, end) spans more than MAX_RANGE_BARS bars, else None."""
    bars = (end - start) // TIMEFRAME_MS[timeframe]
    if bars <= MAX_RANGE_BARS:
        return None
    return (
        f"The range spans {bars} {timeframe} bars; at most {MAX_RANGE_BARS} per request "
        "(page through it with limit and cursor, or use a larger timeframe)."
    )


class CandlesQuery(StrictSchema):
    """A candle window: [start, end), at most ``limit`` rows, or a cursor from a previous page."""

    timeframe = ma.fields.String(load_default="1m", **timeframe_enum())
    start = Timestamp()
    end = Timestamp()
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = ma.fields.String(validate=ma.validate.Length(min=1, max=64))

    @ma.post_load
    def _range(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        if "cursor" in data:
            data["start"], data["end"] = decode_cursor(data["cursor"])
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None:
            if start >= end:
                raise ma.ValidationError("start must be before end.", "start")
            too_long = range_too_long(start, end, data["timeframe"])
            if too_long:
                raise ma.ValidationError(too_long, "end")
        return data

    def fast_load(self, args: MultiDict[str, str]) -> dict[str, Any] | None:
        """What ``load`` returns for a plain valid query, or None to go through ``load``.

        The candle endpoint is the API's hottest, and webargs with the schema machinery
        took about a tenth of a cached request's time (docs/performance.md). This runs the
        same fields and the same range check, without the machinery. Anything it does not
        take as it is (an unknown or repeated parameter, a cursor, an invalid value) returns
        None, so ``load`` answers with its usual 422 and messages. ``args`` is
        ``request.args``.
        """
        data = {key: self.fields[key].load_default for key in ("timeframe", "limit")}
        try:
            for key, values in args.lists():
                if key not in _FAST_FIELDS or len(values) != 1:
                    return None
                data[key] = self.fields[key].deserialize(values[0])
            checked: dict[str, Any] = self._range(data)
        except ma.ValidationError:
            return None
        return checked


_FAST_FIELDS = frozenset({"timeframe", "start", "end", "limit"})


class CandlesOut(OutSchema):
    """Rows are ``[ts_ms, open, high, low, close, volume]``, oldest first."""

    symbol = ma.fields.String()
    timeframe = ma.fields.String(**timeframe_enum())
    rows = ma.fields.List(
        ma.fields.List(
            ma.fields.Float(),
            validate=ma.validate.Length(equal=6),
            metadata={"description": "[ts_ms (integer), open, high, low, close, volume]"},
        )
    )
    next_cursor = ma.fields.String(allow_none=True)


class StreamQuery(StrictSchema):
    """Symbols to watch; ``access_token`` lets an EventSource (which cannot send headers) log in."""

    symbols = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=300))
    access_token = ma.fields.String(validate=ma.validate.Length(max=4096))


class MarketStatsOut(OutSchema):
    """Cache effectiveness and feed liveness, for operators."""

    closed_window_requests = ma.fields.Integer(
        metadata={"description": "Candle requests for closed windows (whole-response cache)"}
    )
    closed_window_hits = ma.fields.Integer()
    closed_window_memory_hits = ma.fields.Integer(
        metadata={"description": "Closed-window hits answered from a web process's memory"}
    )
    hit_ratio = ma.fields.Float(allow_none=True, metadata={"description": "Of closed windows"})
    chunk_hits = ma.fields.Integer(metadata={"description": "Chunk reads served by Redis"})
    chunk_misses = ma.fields.Integer(metadata={"description": "Chunk reads from Postgres"})
    streams = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(),
        metadata={"description": "Per symbol: length and newest entry id of its Redis stream"},
    )
