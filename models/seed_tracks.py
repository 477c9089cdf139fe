"""Demo track records for ``flask seed``: public bots of demo traders, live for days or months.

The records are real, not invented numbers. Each bot is started on a live paper run in
the past (``started_at = now - days``); the caller then replays the stored candles since
then through the live tick path with every bar fresh (``workers.demo.build_track_records``
-> ``workers.ticks.tick_bots``), exactly as a run ticking all along would have traded. Its
equity points, trades and paper account are what the engine made (so, by live parity, a
reconciliation replay should find no difference), and the runs stay ``running``, so the
feed's next candles keep them ticking. See docs/execution.md ("Demo track records").

Made once: a bot that exists already is left alone, so a second seed changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from engine.providers.base import MINUTE_MS
from engine.providers.synthetic import SYNTHETIC_INSTRUMENTS, SyntheticProvider
from models.bots.bots import Bot, create_bot
from models.bots.runs import active_run, start_bot
from models.db import session as db
from models.identity.users import find_by_login
from models.market.candles import first_candle_ms, last_candle_ms
from models.market.data import load_history
from models.market.tables import TIMEFRAME_MS, Instrument

DAY_MS = 86_400_000
# Days of 1m history the long records need, loaded before the oldest stored candle when
# the seed's SEED_HISTORY_DAYS did not reach that far (synthetic instruments only). One
# instrument: its 80 extra days cost the seed about 7 s.
TRACK_HISTORY_DAYS = {"BTC-USD": 110}
# ...but only for an instrument with at least this much history already (the default 30
# days have it): a seed asked for less (``--days 1``) keeps what it asked for.
BACKFILL_AFTER_DAYS = 27
# Bars a catch-up may trade on: all of them (a record, not a restart after downtime).
CATCH_UP_BARS = 10**6


@dataclass(frozen=True)
class DemoTrack:
    """A public demo bot whose live run started ``days`` before the seed ran."""

    owner: str
    name: str
    symbol: str
    timeframe: str
    strategy: dict[str, Any]
    risk: dict[str, Any]
    days: int


def _sma(fast: int, slow: int) -> dict[str, Any]:
    return {"template": "sma_crossover", "params": {"fast": fast, "slow": slow}}


def _template(key: str, **params: Any) -> dict[str, Any]:
    return {"template": key, "params": params}


_TREND_RULES = {
    "rules": {
        "entry": {
            "all": [
                {"op": ">", "left": {"price": "close"}, "right": {"ind": "ema", "period": 50}},
                {
                    "op": "crosses_above",
                    "left": {"ind": "rsi", "period": 14},
                    "right": {"const": 55},
                },
            ]
        },
        "exit": {
            "op": "crosses_below",
            "left": {"ind": "rsi", "period": 14},
            "right": {"const": 45},
        },
    }
}

# Long records (100+ days, BTC-USD: TRACK_HISTORY_DAYS) fill every period's board; the
# others, within the default 30 days of history, fill 7d and 30d. Two are too young for a
# board (2 days) and one repeats another bot's configuration with a shorter record, so the
# boards' eligibility and de-duplication have something to leave out.
DEMO_TRACKS = (
    DemoTrack("carol", "BTC trend rider (SMA 10/30)", "BTC-USD", "1h", _sma(10, 30), {}, 104),
    DemoTrack(
        "carol",
        "BTC trend rider (copy)",
        "BTC-USD",
        "1h",
        _sma(10, 30),
        {},
        40,
    ),
    DemoTrack(
        "dave",
        "BTC RSI dips",
        "BTC-USD",
        "1h",
        _template("rsi_mean_reversion"),
        {"stop_loss": 0.05},
        102,
    ),
    DemoTrack(
        "erin",
        "BTC bands both ways",
        "BTC-USD",
        "1h",
        _template("bollinger_bands"),
        {"direction": "long_short"},
        100,
    ),
    DemoTrack("frank", "BTC momentum rules", "BTC-USD", "1h", _TREND_RULES, {}, 103),
    DemoTrack(
        "grace",
        "BTC MACD swing (4h)",
        "BTC-USD",
        "4h",
        _template("macd"),
        {"trailing_stop": 0.08},
        105,
    ),
    DemoTrack(
        "heidi",
        "BTC Donchian breakout",
        "BTC-USD",
        "1h",
        _template("donchian_breakout"),
        {},
        101,
    ),
    DemoTrack(
        "heidi",
        "BTC EMA 12/26 long-short",
        "BTC-USD",
        "1h",
        _template("ema_crossover"),
        {"direction": "long_short", "stop_loss": 0.03},
        60,
    ),
    DemoTrack("carol", "ETH trend (SMA 20/50)", "ETH-USD", "1h", _sma(20, 50), {}, 27),
    DemoTrack(
        "dave", "ETH RSI dips (15m)", "ETH-USD", "15m", _template("rsi_mean_reversion"), {}, 20
    ),
    DemoTrack("erin", "ETH bands", "ETH-USD", "1h", _template("bollinger_bands"), {}, 26),
    DemoTrack("frank", "SOL momentum rules", "SOL-USD", "1h", _TREND_RULES, {}, 25),
    DemoTrack(
        "grace",
        "SOL Donchian",
        "SOL-USD",
        "1h",
        _template("donchian_breakout"),
        {"stop_loss": 0.06},
        27,
    ),
    DemoTrack("heidi", "SOL MACD", "SOL-USD", "1h", _template("macd"), {}, 14),
    DemoTrack(
        "carol",
        "EUR-USD bands",
        "EUR-USD",
        "1h",
        _template("bollinger_bands"),
        {"direction": "long_short"},
        27,
    ),
    DemoTrack("dave", "EUR-USD EMA cross", "EUR-USD", "1h", _template("ema_crossover"), {}, 24),
    DemoTrack("erin", "GBP-USD RSI", "GBP-USD", "1h", _template("rsi_mean_reversion"), {}, 26),
    DemoTrack("frank", "GBP-USD SMA 5/20", "GBP-USD", "1h", _sma(5, 20), {}, 12),
    DemoTrack("grace", "AAPL trend (SMA 10/40)", "AAPL-USD", "1h", _sma(10, 40), {}, 27),
    DemoTrack("heidi", "AAPL dips", "AAPL-USD", "15m", _template("rsi_mean_reversion"), {}, 9),
    DemoTrack("grace", "SPY MACD", "SPY-USD", "1h", _template("macd"), {}, 26),
    DemoTrack("dave", "SPY Donchian", "SPY-USD", "1h", _template("donchian_breakout"), {}, 18),
    DemoTrack("erin", "SOL fresh start (SMA 5/20)", "SOL-USD", "15m", _sma(5, 20), {}, 2),
    DemoTrack(
        "frank", "ETH fresh start (bands)", "ETH-USD", "15m", _template("bollinger_bands"), {}, 2
    ),
)


@dataclass(frozen=True)
class CatchUp:
    """Runs of one instrument and timeframe to replay up to ``candle_ts`` (its last closed bar)."""

    run_ids: list[str]
    candle_ts: int


@dataclass(frozen=True)
class SeededTracks:
    """What :func:`seed_track_records` made: bot names, and the catch-ups the caller runs."""

    made: list[str]
    catch_up: list[CatchUp]
    backfilled: dict[str, int]


def _instrument(symbol: str) -> Instrument | None:
    return db.scalars(select(Instrument).where(Instrument.symbol == symbol)).one_or_none()


def backfill_track_history(now_ms: int) -> dict[str, int]:
    """Load the 1m history the long records need before each instrument's oldest candle.

    Only synthetic instruments with ``BACKFILL_AFTER_DAYS`` of history already (less means
    the seed was asked for less). Returns the candles loaded per symbol.
    """
    specs = {spec.symbol: spec for spec in SYNTHETIC_INSTRUMENTS}
    provider = SyntheticProvider()
    loaded: dict[str, int] = {}
    for symbol, days in TRACK_HISTORY_DAYS.items():
        instrument = _instrument(symbol)
        if instrument is None or instrument.provider != provider.name:
            continue
        first = first_candle_ms(instrument.id, "1m")
        end = now_ms // MINUTE_MS * MINUTE_MS
        need = end - days * DAY_MS
        if first is None or first <= need or first > end - BACKFILL_AFTER_DAYS * DAY_MS:
            continue
        loaded[symbol] = load_history(provider, instrument, specs[symbol], need, first)
        db.commit()
    return loaded


def seed_track_records(now_ms: int) -> SeededTracks:
    """The demo traders' public bots, each started on a live run ``days`` before ``now_ms``.

    A bot whose run would start before its instrument's oldest candle is not made (a seed
    with less history); one that exists is left alone. The runs are returned grouped by
    instrument and timeframe with the last bar that closed in the stored history, for the
    caller to replay (models/seed_tracks.py's docstring).
    """
    backfilled = backfill_track_history(now_ms)
    made: list[str] = []
    groups: dict[tuple[int, str], list[str]] = {}
    for demo in DEMO_TRACKS:
        owner = find_by_login(demo.owner)
        instrument = _instrument(demo.symbol)
        if owner is None or instrument is None:
            continue
        if db.scalar(select(Bot.id).where(Bot.owner_id == owner.id, Bot.name == demo.name)):
            continue
        started_ms = now_ms - demo.days * DAY_MS
        first = first_candle_ms(instrument.id, "1m")
        if first is None or first > started_ms:
            continue
        bot = _make_bot(owner.id, demo)
        start_bot(owner.id, bot.id, limit=10**6, now=datetime.fromtimestamp(started_ms / 1000, UTC))
        run = active_run(bot)
        if run is not None:
            groups.setdefault((instrument.id, demo.timeframe), []).append(str(run.id))
        made.append(demo.name)
    return SeededTracks(made, _catch_ups(groups), backfilled)


def _make_bot(owner_id: uuid.UUID, demo: DemoTrack) -> Bot:
    return create_bot(
        owner_id,
        {
            "name": demo.name,
            "description": (
                f"A demo bot made by `flask seed`: its live paper run started {demo.days} days "
                "before the seed, which replayed the candles since then through the live "
                "tick path (a genuine record that keeps ticking)."
            ),
            "symbol": demo.symbol,
            "timeframe": demo.timeframe,
            "strategy": demo.strategy,
            "risk": demo.risk,
            "initial_capital": 10_000.0,
            "fee": 0.001,
            "slippage_bps": 5.0,
            "visibility": "public",
        },
    )


def _catch_ups(groups: dict[tuple[int, str], list[str]]) -> list[CatchUp]:
    """Each group's target: the last bar of its timeframe wholly inside the stored 1m history."""
    out = []
    for (instrument_id, timeframe), bot_ids in sorted(groups.items()):
        last = last_candle_ms(instrument_id, "1m")
        if last is None:
            continue
        step = TIMEFRAME_MS[timeframe]
        out.append(CatchUp(bot_ids, (last + MINUTE_MS) // step * step - step))
    return out
