"""The default offline provider: deterministic, realistic-looking synthetic markets.

Each symbol's log price is a mean-reverting walk of daily anchors (00:00 UTC), drawn once
for every day from 1970 to 2099 from one RNG per symbol, around a level that trends
slowly, so prices stay in a sane band for decades. Between two anchors a Brownian
bridge at one-second resolution, drawn from an RNG seeded by (symbol, day), fills in
the day. Any minute can therefore be computed without generating its history, and the
same symbol and minute give the same candle in every process and run.

A day-level Markov regime (calm, normal, turbulent) scales volatility and volume and
persists for weeks. Volatility and volume follow an intraday activity shape per kind
(see :mod:`engine.providers.intraday`); volume also rises with the minute's move.

In the synthetic world every market, FX and equity-like symbols included, trades
24/7: there are no weekends, holidays or session gaps, only quieter hours.

Determinism holds for one numpy version: numpy does not promise that ``Generator``
streams never change, so pin numpy where stored history must keep matching.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.candles import Candles
from engine.providers.base import MINUTE_MS, InstrumentSpec, first_minute_at_or_after
from engine.providers.intraday import MINUTES_PER_DAY, activity_profile

DAY_MS = 86_400_000
SECONDS_PER_DAY = 86_400
SECONDS_PER_MINUTE = 60
DAYS = 47_482  # 1970-01-01 up to, not including, 2100-01-01
REFERENCE_DAY = 20_089  # 2025-01-01: profile prices are the long-run levels then
_SEED_TAG = "botyard.synthetic.v1"


def _spec(symbol: str, kind: str, price: int, size: int, fractional: bool = True) -> InstrumentSpec:
    base, quote = symbol.split("-")
    return InstrumentSpec(symbol, base, quote, kind, price, size, fractional)


SYNTHETIC_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    _spec("BTC-USD", "crypto", 2, 6),
    _spec("ETH-USD", "crypto", 2, 5),
    _spec("SOL-USD", "crypto", 3, 3),
    _spec("EUR-USD", "fx", 5, 2),
    _spec("GBP-USD", "fx", 5, 2),
    _spec("AAPL-USD", "equity", 2, 0, fractional=False),
    _spec("SPY-USD", "equity", 2, 0, fractional=False),
)


@dataclass(frozen=True)
class SyntheticProfile:
    """How one synthetic market behaves.

    ``price`` is the long-run level at 2025-01-01, ``annual_vol`` and ``annual_drift``
    are per year in log terms, ``band`` is the typical distance (log std) of the daily
    anchor from that level, and ``minute_volume`` the mean volume per minute in base units.
    """

    price: float
    annual_vol: float
    annual_drift: float
    band: float
    minute_volume: float


_PROFILES: dict[str, SyntheticProfile] = {
    "BTC-USD": SyntheticProfile(60_000.0, 0.70, 0.03, 0.35, 12.0),
    "ETH-USD": SyntheticProfile(3_000.0, 0.75, 0.03, 0.35, 150.0),
    "SOL-USD": SyntheticProfile(150.0, 0.80, 0.03, 0.40, 2_500.0),
    "EUR-USD": SyntheticProfile(1.08, 0.075, 0.0, 0.06, 1_500_000.0),
    "GBP-USD": SyntheticProfile(1.27, 0.085, 0.0, 0.06, 800_000.0),
    "AAPL-USD": SyntheticProfile(190.0, 0.25, 0.05, 0.15, 40_000.0),
    "SPY-USD": SyntheticProfile(500.0, 0.20, 0.05, 0.12, 55_000.0),
}

_KIND_DEFAULTS: dict[str, SyntheticProfile] = {
    "crypto": SyntheticProfile(100.0, 0.70, 0.03, 0.35, 1_000.0),
    "fx": SyntheticProfile(1.0, 0.08, 0.0, 0.06, 1_000_000.0),
    "equity": SyntheticProfile(100.0, 0.22, 0.05, 0.15, 20_000.0),
}

# Regimes calm / normal / turbulent: daily transition probabilities (rows sum to 1)
# chosen so a regime typically lasts weeks, and raw volatility multipliers.
_TRANSITIONS = np.array([[0.96, 0.04, 0.0], [0.03, 0.94, 0.03], [0.0, 0.10, 0.90]])
_RAW_LEVELS = np.array([0.65, 1.0, 1.7])


def _regime_levels() -> NDArray[np.float64]:
    # Scale the multipliers so the long-run mean variance is 1 and the profile's
    # annual_vol is the long-run volatility.
    eigenvalues, eigenvectors = np.linalg.eig(_TRANSITIONS.T)
    stationary = np.real(eigenvectors[:, int(np.argmin(np.abs(eigenvalues - 1.0)))])
    stationary = stationary / stationary.sum()
    return np.asarray(_RAW_LEVELS / math.sqrt(float(stationary @ _RAW_LEVELS**2)))


_LEVELS = _regime_levels()


def profile_for(spec: InstrumentSpec) -> SyntheticProfile:
    """The synthetic behaviour of ``spec``: its own profile, or its kind's default."""
    return _PROFILES.get(spec.symbol, _KIND_DEFAULTS[spec.kind])


def _seed(symbol: str, part: str) -> int:
    # Python's hash() is salted per process; a digest is the same everywhere.
    text = f"{_SEED_TAG}:{symbol}:{part}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Path:
    """A symbol's day-level history: log anchors (DAYS + 1) and regime multipliers (DAYS)."""

    anchors: NDArray[np.float64]
    regime: NDArray[np.float64]


@dataclass(frozen=True)
class _Shape:
    """A kind's intraday shape: volume activity per minute, volatility per second."""

    activity: NDArray[np.float64]  # (1440,), mean 1
    minute_var: NDArray[np.float64]  # (1440,), share of the day's variance, sums to 1
    second_scale: NDArray[np.float64]  # (86400,), per-second std for a daily std of 1
    bridge: NDArray[np.float64]  # (86401,), cumulative variance share at each second


@dataclass(frozen=True)
class _Day:
    """One computed day: rounded prices at seconds 0..86400 and its 1440 candles."""

    seconds: NDArray[np.float64]
    candles: Candles


def _daily_path(symbol: str, profile: SyntheticProfile) -> _Path:
    rng = np.random.default_rng(_seed(symbol, "path"))
    uniforms = rng.random(DAYS)
    shocks = rng.standard_normal(DAYS)
    # The next regime for every day and every current regime at once; the walk below
    # then only picks among them, keeping the Python loop to list look-ups.
    cumulative = np.cumsum(_TRANSITIONS, axis=1)
    nexts = [np.searchsorted(row, uniforms, side="right").tolist() for row in cumulative]
    state, states = 1, []
    for day in range(DAYS):
        states.append(state)
        state = min(nexts[state][day], 2)
    regime = _LEVELS[np.array(states)]

    daily_vol = profile.annual_vol / math.sqrt(365.0)
    # AR(1) on the log distance from the level; phi makes its stationary std the band.
    phi = math.sqrt(max(0.0, 1.0 - (daily_vol / profile.band) ** 2))
    steps = (daily_vol * regime * shocks).tolist()
    gap = profile.band * float(rng.standard_normal())
    gaps = [gap]
    for step in steps:
        gap = phi * gap + step
        gaps.append(gap)
    days = np.arange(DAYS + 1, dtype=np.float64)
    level = math.log(profile.price) + profile.annual_drift * (days - REFERENCE_DAY) / 365.25
    return _Path(level + np.array(gaps), regime)


def _intraday_shape(kind: str) -> _Shape:
    activity = activity_profile(kind)
    # Volatility follows activity but less than one for one (variance ~ activity).
    minute_var = activity / activity.sum()
    second_var = np.repeat(minute_var / SECONDS_PER_MINUTE, SECONDS_PER_MINUTE)
    bridge = np.concatenate(([0.0], np.cumsum(second_var)))
    bridge /= bridge[-1]
    return _Shape(activity, minute_var, np.sqrt(second_var), bridge)


class SyntheticProvider:
    """Deterministic synthetic 1m candles and per-second quotes for any instrument spec.

    Covers 1970-01-01 to 2099-12-31 UTC; outside that it raises ValueError.
    """

    name = "synthetic"

    def __init__(self) -> None:
        self._paths: dict[InstrumentSpec, _Path] = {}
        self._shapes: dict[str, _Shape] = {}
        # The feed asks for the same minute every second, so keep each spec's last day.
        self._last_day: dict[InstrumentSpec, tuple[int, _Day]] = {}

    def candles(self, spec: InstrumentSpec, start_ms: int, end_ms: int) -> Candles:
        """The 1m candles with ``start_ms <= ts < end_ms``; start rounds up to a minute."""
        first = first_minute_at_or_after(start_ms)
        if end_ms <= first:
            return Candles.empty()
        parts = []
        for day in range(first // DAY_MS, (end_ms - 1) // DAY_MS + 1):
            parts.append(self._day(spec, day).candles.between(first, end_ms))
        if len(parts) == 1:
            return parts[0]
        return Candles(
            *(
                np.concatenate([getattr(part, column) for part in parts])
                for column in ("ts", "open", "high", "low", "close", "volume")
            )
        )

    def quotes(self, spec: InstrumentSpec, minute_ms: int) -> NDArray[np.float64]:
        """The 60 per-second prices of the minute containing ``minute_ms``; shape (60,).

        ``quotes[0]`` is that minute's open and every quote lies within its low and high.
        """
        day = minute_ms // DAY_MS
        offset = (minute_ms - day * DAY_MS) // MINUTE_MS * SECONDS_PER_MINUTE
        seconds = self._day(spec, day).seconds
        return np.array(seconds[offset : offset + SECONDS_PER_MINUTE], dtype=np.float64)

    def _day(self, spec: InstrumentSpec, day: int) -> _Day:
        cached = self._last_day.get(spec)
        if cached is not None and cached[0] == day:
            return cached[1]
        if not 0 <= day < DAYS:
            raise ValueError("the synthetic world runs from 1970-01-01 to 2099-12-31 UTC")
        computed = self._compute_day(spec, day)
        self._last_day[spec] = (day, computed)
        return computed

    def _path(self, spec: InstrumentSpec) -> _Path:
        if spec not in self._paths:
            self._paths[spec] = _daily_path(spec.symbol, profile_for(spec))
        return self._paths[spec]

    def _shape(self, kind: str) -> _Shape:
        if kind not in self._shapes:
            self._shapes[kind] = _intraday_shape(kind)
        return self._shapes[kind]

    def _compute_day(self, spec: InstrumentSpec, day: int) -> _Day:
        profile = profile_for(spec)
        path, shape = self._path(spec), self._shape(spec.kind)
        start, end = float(path.anchors[day]), float(path.anchors[day + 1])
        daily_vol = profile.annual_vol / math.sqrt(365.0) * float(path.regime[day])
        rng = np.random.default_rng(_seed(spec.symbol, f"day:{day}"))

        walk = np.empty(SECONDS_PER_DAY + 1)
        walk[0] = 0.0
        np.cumsum(rng.standard_normal(SECONDS_PER_DAY) * shape.second_scale, out=walk[1:])
        walk *= daily_vol
        # Brownian bridge in variance time: pins the walk to both anchors.
        log_price = start + walk - shape.bridge * (walk[-1] - (end - start))
        log_price[-1] = end  # exactly the next day's open, whatever the rounding above
        tick = 10.0**-spec.price_precision
        seconds = np.round(np.maximum(np.exp(log_price), tick), spec.price_precision)

        grid = seconds[:-1].reshape(MINUTES_PER_DAY, SECONDS_PER_MINUTE)
        close = seconds[SECONDS_PER_MINUTE::SECONDS_PER_MINUTE]
        volume = _minute_volume(
            log_price, profile=profile, shape=shape, regime=float(path.regime[day]), rng=rng
        )
        ts = day * DAY_MS + np.arange(MINUTES_PER_DAY, dtype=np.int64) * MINUTE_MS
        candles = Candles(
            ts,
            grid[:, 0],
            np.maximum(grid.max(axis=1), close),
            np.minimum(grid.min(axis=1), close),
            close,
            np.round(volume, spec.size_precision),
        )
        seconds.flags.writeable = False
        return _Day(seconds, candles)


def _minute_volume(
    log_price: NDArray[np.float64],
    *,
    profile: SyntheticProfile,
    shape: _Shape,
    regime: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    daily_vol = profile.annual_vol / math.sqrt(365.0) * regime
    moves = np.abs(np.diff(log_price[::SECONDS_PER_MINUTE]))
    typical_move = daily_vol * np.sqrt(shape.minute_var) * math.sqrt(2.0 / math.pi)
    # Big moves draw volume, but only partly: most volume is the steady flow.
    surprise = 0.7 + 0.3 * np.minimum(moves / typical_move, 5.0)
    noise = np.exp(0.5 * rng.standard_normal(MINUTES_PER_DAY) - 0.125)
    volume = profile.minute_volume * shape.activity * regime * surprise * noise
    return np.asarray(volume, dtype=np.float64)
