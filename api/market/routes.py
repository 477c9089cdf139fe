"""Market endpoints: instruments, quotes and candles (public; rate limited per caller)."""

from __future__ import annotations

import hashlib
import time
from typing import Any, cast

import marshmallow as ma
import orjson
from flask import Response, request
from flask.views import MethodView
from flask_smorest import abort

from api.access import public, require_permission
from api.errors import ErrorOut
from api.extensions import redis_client, settings
from api.market import blp
from api.market.schemas import (
    CandlesOut,
    CandlesQuery,
    InstrumentPageOut,
    InstrumentQuery,
    MarketStatsOut,
    QuoteOut,
    StreamQuery,
    encode_cursor,
    range_too_long,
)
from api.market.stream import open_stream
from api.pagination import cursor_page, paged
from api.ratelimit import caller_key
from models.db import session as db
from models.errors import NotFound
from models.market.cache import (
    FALLBACK_QUOTE_TTL,
    CandleCache,
    cached_quote,
    response_key,
    store_quote,
    stream_heads,
)
from models.market.candles import last_candle_ms, quote_from_candles, read_candles, round_rows
from models.market.instruments import (
    InstrumentRef,
    get_instrument,
    instrument_ref,
    instrument_symbols,
    search_instruments,
)
from models.market.responses import PROCESS_RESPONSES, ResponseCache
from models.market.tables import TIMEFRAME_MS

# The stream's 200 is text, not JSON: documented by hand, since flask-smorest's responses
# are marshmallow schemas.
SSE_CONTENT = {
    "description": "`text/event-stream` of `quote` and `candle` events",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
CLOSED_MAX_AGE = 86_400
OPEN_MAX_AGE = 5


def _json(body: bytes, max_age: int) -> Response:
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@blp.route("/instruments")
class Instruments(MethodView):
    @public
    @blp.doc(operationId="listInstruments", security=[])
    @blp.arguments(InstrumentQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, InstrumentPageOut)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """List instruments (filter by text, kind, active), by symbol."""
        stmt = search_instruments(query.get("q"), query.get("kind"), query.get("active"))
        return paged(stmt, query)


@blp.route("/instruments/<string:symbol>/quote")
class InstrumentQuote(MethodView):
    @public
    @blp.doc(operationId="getQuote", security=[])
    @blp.response(200, QuoteOut)
    @blp.alt_response(404, schema=ErrorOut, description="Unknown symbol")
    def get(self, symbol: str) -> Response:
        """Last price, 24h change, high, low and volume (from the feed's cache, else Postgres)."""
        symbol = symbol.upper()
        cached = cached_quote(redis_client(), symbol)
        if cached is not None:
            return _json(cached, 1)
        instrument = get_instrument(symbol)
        quote = quote_from_candles(instrument)
        if quote is None:
            raise NotFound(f"No market data for {symbol} yet.")
        return _json(store_quote(redis_client(), symbol, quote.as_dict(), FALLBACK_QUOTE_TTL), 1)


def _conditional(etag: str, body: bytes, max_age: int) -> Response:
    response = _json(body, max_age)
    response.set_etag(etag)
    return cast(Response, response.make_conditional(request))


def _etag(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


def _candles_body(
    ref: InstrumentRef,
    timeframe: str,
    *,
    start: int,
    end: int,
    limit: int,
    latest: bool,
    now_ms: int,
) -> bytes:
    """The response body, read through the chunk cache (Postgres on a miss)."""
    db.rollback()  # release the read transaction before the (possibly slow) cache work

    def load(lo: int, hi: int) -> list[list[float]]:
        try:
            return read_candles(ref.id, timeframe, lo, hi, limit=10 * 1000 * 1000)
        finally:
            db.rollback()

    def window(rows: int) -> list[list[float]]:
        return CandleCache(redis_client()).window(
            ref.symbol,
            timeframe,
            timeframe_ms=TIMEFRAME_MS[timeframe],
            start=start,
            end=end,
            limit=rows,
            now_ms=now_ms,
            loader=load,
        )

    next_cursor: str | None = None
    if latest:
        rows = window(limit + 1)[-limit:]
    else:
        rows, next_cursor = cursor_page(
            window, limit, lambda row: encode_cursor(int(row[0]), end), from_next_row=True
        )
    # Rounded here, so the cached bytes and every later hit carry no binary noise either.
    rows = round_rows(rows, ref.price_precision, ref.size_precision)
    return orjson.dumps(
        {"symbol": ref.symbol, "timeframe": timeframe, "rows": rows, "next_cursor": next_cursor}
    )


@blp.route("/instruments/<string:symbol>/candles")
class InstrumentCandles(MethodView):
    @public
    @blp.doc(operationId="listCandles", security=[])
    @blp.arguments(CandlesQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, CandlesOut)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.alt_response(404, schema=ErrorOut, description="Unknown symbol")
    def get(self, query: dict[str, Any], symbol: str) -> Response:
        """Candles `[ts_ms, o, h, l, c, v]` in [start, end); 5,000 a page at most, cursor paged."""
        ref = instrument_ref(symbol)
        timeframe = query["timeframe"]
        if timeframe not in ref.timeframes:
            served = f"{ref.symbol} is served in {', '.join(ref.timeframes)}."
            abort(422, message=served, errors={"query": {"timeframe": [served]}})
        tf_ms = TIMEFRAME_MS[timeframe]
        now_ms = int(time.time() * 1000)
        limit = query["limit"]
        end = query.get("end") or (now_ms // tf_ms + 1) * tf_ms
        start = query.get("start")
        latest = start is None  # the newest `limit` rows before end, no paging
        if start is None:
            start = max(0, end - (limit + 1) * tf_ms)
        elif "end" not in query:
            # The schema checks the span when both ends are given; up to now, it is checked
            # here (a start in 1970 would walk 56 years of cache chunks: minutes, issue 12).
            too_long = range_too_long(start, end, timeframe)
            if too_long:
                abort(422, message=too_long, errors={"query": {"start": [too_long]}})
        start = -(-start // tf_ms) * tf_ms  # the first bucket that opens at or after start
        window = {"start": start, "end": end, "limit": limit, "latest": latest, "now_ms": now_ms}
        if end > now_ms // tf_ms * tf_ms:  # holds the forming bucket: changes every minute
            body = _candles_body(ref, timeframe, **window)
            return _conditional(_etag(body), body, OPEN_MAX_AGE)
        # A closed window whose base candles are all stored never changes (until an import
        # rewrites history): its finished response is cached whole, in this process and in
        # Redis. (A window the feed has not caught up with yet, after an outage, is served
        # but not kept.)
        responses = ResponseCache(redis_client())
        lookup = responses.get(ref.symbol, response_key(ref.symbol, timeframe, start, end, limit))
        if lookup.hit is not None:
            return _conditional(lookup.hit.etag, lookup.hit.body, CLOSED_MAX_AGE)
        body = _candles_body(ref, timeframe, **window)
        etag = _etag(body)
        newest = last_candle_ms(ref.id, ref.base_timeframe)
        db.rollback()
        if newest is not None and end <= newest + TIMEFRAME_MS[ref.base_timeframe]:
            responses.put(lookup, etag, body)
        return _conditional(etag, body, CLOSED_MAX_AGE)


@blp.route("/stream")
class MarketStream(MethodView):
    @public
    @blp.doc(operationId="streamMarket", security=[], responses={"200": SSE_CONTENT})
    @blp.arguments(StreamQuery(), location="query", unknown=ma.RAISE)
    @blp.response(200, description=SSE_CONTENT["description"])
    @blp.alt_response(404, schema=ErrorOut, description="Unknown symbol")
    @blp.alt_response(429, schema=ErrorOut, description="Too many open streams")
    def get(self, query: dict[str, Any]) -> Response:
        """Live quotes and closed candles as Server-Sent Events; resume with Last-Event-ID."""
        symbols = list(
            dict.fromkeys(s.strip().upper() for s in query["symbols"].split(",") if s.strip())
        )
        most = settings().sse_max_symbols
        if not symbols or len(symbols) > most:
            message = f"Watch between 1 and {most} symbols per stream."
            abort(422, message=message, errors={"query": {"symbols": [message]}})
        # Symbols as stored, read before the rollback: touching an instrument after it would
        # reload it, and leave a transaction open for the life of the stream.
        known = tuple(get_instrument(symbol).symbol for symbol in symbols)
        db.rollback()  # no transaction stays open for the life of the stream
        return open_stream(
            known, caller_key(), request.headers.get("Last-Event-ID"), redis_client()
        )


@blp.route("/stats")
class MarketStats(MethodView):
    @require_permission("ops:read")
    @blp.doc(operationId="getMarketStats")
    @blp.response(200, MarketStatsOut)
    @blp.alt_response(403, schema=ErrorOut, description="Missing permission")
    def get(self) -> dict[str, Any]:
        """Candle-cache effectiveness, and the newest entry of each symbol's stream."""
        PROCESS_RESPONSES.sync()  # this process's unsent counts; the others' follow within 0.5 s
        stats = CandleCache(redis_client()).stats()
        lookups, misses = stats.get("response_lookups", 0), stats.get("response_misses", 0)
        return {
            "closed_window_requests": lookups,
            "closed_window_hits": lookups - misses,
            "closed_window_memory_hits": lookups - stats.get("response_local_misses", 0),
            "hit_ratio": (lookups - misses) / lookups if lookups else None,
            "chunk_hits": stats.get("candle_hits", 0),
            "chunk_misses": stats.get("candle_misses", 0),
            "streams": stream_heads(redis_client(), instrument_symbols()),
        }
