"""Instrument look-ups and the idempotent sync of a provider's catalogue."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Select, or_, select

from engine.providers.base import InstrumentSpec
from models.db import session as db
from models.errors import NotFound
from models.market.tables import Instrument


def get_instrument(symbol: str) -> Instrument:
    """The instrument with that symbol (case-insensitive), or :class:`NotFound`."""
    found = db.scalars(select(Instrument).where(Instrument.symbol == symbol.upper())).one_or_none()
    if found is None:
        raise NotFound(f"No instrument {symbol!r}; list them at /api/v1/market/instruments.")
    return found


def search_instruments(
    query: str | None, kind: str | None, active: bool | None
) -> Select[Instrument]:
    """Instruments filtered by text, kind and active flag, ordered by symbol."""
    stmt = select(Instrument).order_by(Instrument.symbol)
    if query:
        pattern = f"%{query.upper().replace('%', '').replace('_', '')}%"
        stmt = stmt.where(or_(Instrument.symbol.like(pattern), Instrument.base.like(pattern)))
    if kind:
        stmt = stmt.where(Instrument.kind == kind)
    if active is not None:
        stmt = stmt.where(Instrument.active.is_(active))
    return stmt


def sync_instruments(
    specs: Iterable[InstrumentSpec], provider: str, base_timeframe: str = "1m"
) -> tuple[list[Instrument], int]:
    """Create or update instruments from a provider's catalogue; returns them and rows changed."""
    changed = 0
    result = []
    for spec in specs:
        wanted = {
            "provider": provider,
            "kind": spec.kind,
            "base": spec.base,
            "quote": spec.quote,
            "price_precision": spec.price_precision,
            "size_precision": spec.size_precision,
            "fractional": spec.fractional,
            "base_timeframe": base_timeframe,
        }
        inst = db.scalars(select(Instrument).where(Instrument.symbol == spec.symbol)).one_or_none()
        if inst is None:
            inst = Instrument(symbol=spec.symbol, active=True, **wanted)
            db.add(inst)
            changed += 1
        elif any(getattr(inst, k) != v for k, v in wanted.items()):
            for key, value in wanted.items():
                setattr(inst, key, value)
            changed += 1
        result.append(inst)
    db.flush()
    return result, changed


def instrument_symbols(active_only: bool = True) -> list[str]:
    """Every instrument's symbol, sorted."""
    stmt = select(Instrument.symbol).order_by(Instrument.symbol)
    if active_only:
        stmt = stmt.where(Instrument.active.is_(True))
    return list(db.scalars(stmt))


@dataclass(frozen=True)
class InstrumentRef:
    """What the hot read paths need of an instrument, detached from any session."""

    id: int
    symbol: str
    base_timeframe: str
    timeframes: tuple[str, ...]
    price_precision: int
    size_precision: int


REF_TTL_S = 60.0
_refs: dict[str, tuple[float, InstrumentRef]] = {}


def instrument_ref(symbol: str) -> InstrumentRef:
    """The instrument's id and timeframes, cached in this process for ``REF_TTL_S`` seconds.

    The candle and quote endpoints would otherwise spend a query per request on a
    row that almost never changes; a change shows within a minute. Unknown symbols are
    not cached (:class:`NotFound` every time).
    """
    key = symbol.upper()
    now = time.monotonic()
    cached = _refs.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    inst = get_instrument(key)
    ref = InstrumentRef(
        inst.id,
        inst.symbol,
        inst.base_timeframe,
        tuple(inst.timeframes()),
        inst.price_precision,
        inst.size_precision,
    )
    _refs[key] = (now + REF_TTL_S, ref)
    return ref


def forget_instrument_refs() -> None:
    """Drop the process's cached refs (after an import changed instruments, and in tests)."""
    _refs.clear()
