"""Loading history into Postgres: the seed's bulk load, the feed's backfill, CSV imports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import structlog
from sqlalchemy import select

from engine.candles import Candles
from engine.providers.base import InstrumentSpec, MarketDataProvider
from engine.providers.csvfile import CsvImportError, parse_candles_csv
from models.db import session as db
from models.errors import DomainError
from models.market.candles import derive_timeframes, last_candle_ms, upsert_candles
from models.market.instruments import sync_instruments
from models.market.tables import TIMEFRAME_MS, Instrument

log = structlog.get_logger(__name__)

MINUTE_MS = TIMEFRAME_MS["1m"]
UPSERT_BATCH = 20_000


def load_history(
    provider: MarketDataProvider,
    instrument: Instrument,
    spec: InstrumentSpec,
    start_ms: int,
    end_ms: int,
) -> int:
    """Fetch 1m candles for [start, end) and store them with their derived timeframes."""
    if end_ms <= start_ms:
        return 0
    candles = provider.candles(spec, start_ms, end_ms)
    rows = candles.to_rows()
    for offset in range(0, len(rows), UPSERT_BATCH):
        upsert_candles(instrument.id, "1m", rows[offset : offset + UPSERT_BATCH])
    derive_timeframes(instrument, start_ms, end_ms)
    return len(rows)


def fill_gap(
    provider: MarketDataProvider,
    pairs: Sequence[tuple[Instrument, InstrumentSpec]],
    now_ms: int,
    history_days: int,
) -> dict[str, int]:
    """Bring every instrument's 1m candles up to the last closed minute before ``now_ms``.

    Instruments with no candles get ``history_days`` of history; the others continue from
    their newest candle, so a restart leaves no gap and (being an upsert) no duplicate.
    Commits per instrument so a long load makes progress visible and restartable.
    """
    end = now_ms // MINUTE_MS * MINUTE_MS
    loaded: dict[str, int] = {}
    for instrument, spec in pairs:
        last = last_candle_ms(instrument.id, "1m")
        start = end - history_days * 86_400_000 if last is None else last + MINUTE_MS
        count = load_history(provider, instrument, spec, start, end)
        db.commit()
        loaded[instrument.symbol] = count
        if count:
            log.info("history_loaded", symbol=instrument.symbol, candles=count)
    return loaded


class CsvRejected(DomainError):
    """A CSV file with bad rows; ``errors`` lists them with line numbers."""

    status = 422

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"The file was not imported: {len(errors)} problem(s).", errors)
        self.errors: list[str] = errors


@dataclass(frozen=True)
class CsvImportReport:
    """What ``import_csv`` stored."""

    symbol: str
    layout: str
    rows: int
    skipped: int
    start_ms: int
    end_ms: int
    created_instrument: bool
    timeframes: tuple[str, ...]


def _symbol_parts(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("-")
    if not sep or not base or not quote:
        raise DomainError(f"Symbol {symbol!r} must look like BASE-QUOTE, e.g. BTC-USD.")
    return base, quote


def import_csv(
    lines: Iterable[str], symbol: str, timeframe: str, kind: str = "equity"
) -> CsvImportReport:
    """Store a CSV export's candles as ``symbol``'s base-timeframe history, with derived ones.

    A new symbol becomes an instrument of provider ``csv`` whose base timeframe is
    ``timeframe``; an existing one must already have that base timeframe (mixing, say,
    daily bars into a 1m history would contradict its derived daily candles).
    Re-importing a file overwrites the same rows. Raises for
    bad rows (:class:`CsvRejected`) and :class:`DomainError` for a bad symbol or timeframe.
    """
    symbol = symbol.upper()
    if timeframe not in TIMEFRAME_MS:
        raise DomainError(f"Timeframe must be one of {', '.join(TIMEFRAME_MS)}.")
    step = TIMEFRAME_MS[timeframe]
    try:
        parsed = parse_candles_csv(lines, step)
    except CsvImportError as exc:
        raise CsvRejected(exc.errors) from exc
    instrument = db.scalars(select(Instrument).where(Instrument.symbol == symbol)).one_or_none()
    created = instrument is None
    if instrument is None:
        base, quote = _symbol_parts(symbol)
        try:
            spec = InstrumentSpec(
                symbol=symbol,
                base=base,
                quote=quote,
                kind=kind,
                price_precision=_decimals(parsed.candles),
                size_precision=0 if kind == "equity" else 8,
                fractional=kind != "equity",
            )
        except ValueError as exc:
            raise DomainError(f"Symbol {symbol!r}: {exc}") from exc
        (instrument,), _ = sync_instruments([spec], provider="csv", base_timeframe=timeframe)
    elif instrument.base_timeframe != timeframe:
        raise DomainError(
            f"{symbol} stores {instrument.base_timeframe} candles; import {timeframe} bars "
            "under another symbol."
        )
    rows = parsed.candles.to_rows()
    for offset in range(0, len(rows), UPSERT_BATCH):
        upsert_candles(instrument.id, timeframe, rows[offset : offset + UPSERT_BATCH])
    start, end = int(rows[0][0]), int(rows[-1][0]) + step
    derive_timeframes(instrument, start, end)
    return CsvImportReport(
        symbol,
        parsed.layout,
        len(rows),
        parsed.skipped,
        start,
        end,
        created_instrument=created,
        timeframes=tuple(instrument.timeframes()),
    )


def _decimals(candles: Candles, most: int = 8) -> int:
    """The fewest decimal places that represent every price in ``candles`` (at most ``most``)."""
    prices = np.concatenate([candles.open, candles.high, candles.low, candles.close])
    for places in range(most + 1):
        if np.allclose(np.round(prices, places), prices, rtol=0, atol=10.0 ** -(most + 2)):
            return places
    return most
