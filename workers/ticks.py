"""The tick job: advance a batch of live runs to a closed candle (load -> engine -> persist).

A batch is ticked in three phases, so its cost is a few queries however many runs it holds:

1. **Load**: lock the batch's running runs in one query (id order, so two jobs never
   deadlock) and read each instrument and timeframe's candles once.
2. **Engine**: advance each run in memory (``engine.live.advance``). An exception here is
   that bot's failure, counted against it; the others go on.
3. **Persist**: write every run's trades, equity, state and logs in bulk inside a
   savepoint. If that fails, each run is written in a savepoint of its own, so only the
   run whose rows the database refuses fails.

The batch commits once. Transient errors (the database or Redis going away, a deadlock,
the job's timeout) are not a bot's fault: they fail the job, which RQ retries with
backoff, and nothing is counted. A run that reaches ``BOT_MAX_FAILURES`` moves to
``error`` in a transaction of its own after the commit. See docs/execution.md.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import structlog
from flask import current_app
from sqlalchemy import text

from engine.broker import BrokerConfig, BrokerState, Risk, validate_risk
from engine.candles import Candles
from engine.live import RunSpan, SignalsOf, advance
from engine.signals import Signals
from engine.simulator import Simulation
from engine.strategies import Strategy, validate_strategy
from models.bots.runs import Costs, config_from
from models.bots.ticks import (
    LiveRun,
    Tick,
    count_failures,
    lock_running_runs,
    move_to_error,
    save_ticks,
    span_of,
)
from models.community.mirrors import MirrorRoutes, mark_following, mirror_routes
from models.db import session as db
from models.market.candles import read_candles
from workers.enqueue import TICK_TIMEOUT
from workers.mirror_ticks import first_new_bar, follow_source
from workers.tick_events import announce_error, publish
from workers.transient import is_transient

log = structlog.get_logger(__name__)

T = TypeVar("T")

DB_TIMEOUT_S = TICK_TIMEOUT // 2


class Shared:
    """Candles and signals the tick jobs of one candle share within this worker process.

    The dispatcher cuts the runs of an instrument and timeframe into several jobs that
    one worker often takes one after the other, and a signal depends only on the pair,
    the strategy and the bars (``engine.live``), so each is computed once per candle.
    Entries are keyed by the exact bars they cover (first ts, last ts, count), so candles
    stored in between are never missed.
    """

    MAX_SIGNALS = 20_000  # per candle; with TAIL_BARS, at most about 10 MB
    TAIL_BARS = 64

    def __init__(self) -> None:
        self.candles: dict[tuple[int, str], Candles] = {}
        self.signals: dict[tuple[Any, ...], Signals] = {}

    def load(self, pair: tuple[int, str], start: int, candle_ts: int) -> Candles:
        """The pair's candles from ``start`` (or earlier) through ``candle_ts``."""
        cached = self.candles.get(pair)
        # A candle not stored yet (or none at all) is looked for again.
        if (
            cached is not None
            and len(cached)
            and cached.ts[0] <= start < cached.ts[-1] == candle_ts
        ):
            return cached
        rows = read_candles(pair[0], pair[1], start, candle_ts + 1, limit=10**8)
        self.candles[pair] = Candles.from_rows(rows) if rows else Candles.empty()
        return self.candles[pair]

    def signals_of(self, strategy: Strategy, spec: bytes, pair: tuple[int, str]) -> SignalsOf:
        """Signals over a slice of the pair's candles, computed once per strategy and bars.

        Only the last ``TAIL_BARS`` signals of each computation are kept, which is all a
        tick on time needs; a run catching up further computes its own.
        """
        candles = self.candles[pair]

        def compute(start: int, first: int, stop: int) -> Signals:
            key = (spec, pair, int(candles.ts[start]), int(candles.ts[stop - 1]), stop - start)
            tail = self.signals.get(key)
            if tail is not None and stop - first <= len(tail):
                return tail.slice(len(tail) - (stop - first), len(tail))
            full = strategy.signals(candles.slice(start, stop))
            if tail is None and len(self.signals) < self.MAX_SIGNALS:
                self.signals[key] = _copied_tail(full, self.TAIL_BARS)
            return full.slice(first - start, stop - start)

        return compute


def _copied_tail(signals: Signals, bars: int) -> Signals:
    """The last ``bars`` signals as arrays of their own (a view would keep the whole series)."""
    n = len(signals)
    part = signals.slice(max(0, n - bars), n)
    return Signals(
        part.long_entry.copy(),
        part.long_exit.copy(),
        part.short_entry.copy(),
        part.short_exit.copy(),
        part.scale_in,
    )


# The shared work of the last few candles (jobs of 1m and 5m candles arrive interleaved).
_SHARED: OrderedDict[int, Shared] = OrderedDict()
_SHARED_CANDLES = 4


def shared_for(candle_ts: int) -> Shared:
    """This process's shared work for the candle, evicting the oldest candle's."""
    if candle_ts in _SHARED:
        _SHARED.move_to_end(candle_ts)
        return _SHARED[candle_ts]
    _SHARED[candle_ts] = Shared()
    while len(_SHARED) > _SHARED_CANDLES:
        _SHARED.popitem(last=False)
    return _SHARED[candle_ts]


class Parsed:
    """Specs validated once per process: validation is pure and the same specs recur each tick."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self.strategies: dict[bytes, tuple[Strategy, bytes]] = {}
        self.risks: dict[bytes, Risk] = {}
        self.configs: dict[Costs, BrokerConfig] = {}

    def strategy(self, spec: dict[str, Any]) -> tuple[Strategy, bytes]:
        """The validated strategy of a JSON spec, and its canonical spec's key."""

        def make() -> tuple[Strategy, bytes]:
            strategy = validate_strategy(spec)
            return strategy, _key(strategy.spec)

        return self._get(self.strategies, _key(spec), make)

    def risk(self, spec: dict[str, Any]) -> Risk:
        """The validated risk options of a JSON spec."""
        return self._get(self.risks, _key(spec), lambda: validate_risk(spec))

    def config(self, costs: Costs) -> BrokerConfig:
        """The paper account's config: capital, fee, slippage and the instrument's unit rules."""
        return self._get(self.configs, costs, lambda: config_from(costs))

    def _get(self, cache: dict[Any, T], key: Any, make: Callable[[], T]) -> T:
        found = cache.get(key)
        if found is None:
            found = make()
            if len(cache) >= self.LIMIT:
                cache.clear()
            cache[key] = found
        return found


def _key(spec: dict[str, Any]) -> bytes:
    return orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)


_PARSED = Parsed()


@dataclass
class Batch:
    """One tick job: its target candle, its settings and the process's shared work."""

    candle_ts: int
    fresh_bars: int
    epoch_bars: int
    shared: Shared
    # Each source run's simulation of this tick, for its mirrors (workers/mirror_ticks.py).
    sims: dict[uuid.UUID, Simulation] = field(default_factory=dict)


@dataclass(frozen=True)
class Prepared:
    """A locked run with its validated strategy (and the spec's key) and its span."""

    run: LiveRun
    strategy: Strategy
    spec: bytes
    span: RunSpan

    @property
    def pair(self) -> tuple[int, str]:
        """The run's instrument and timeframe."""
        return (self.run.instrument_id, self.run.timeframe)


def _prepare(batch: Batch, run: LiveRun) -> Prepared:
    """Validate the run's strategy (once per process) and place it on the epoch grid."""
    strategy, spec = _PARSED.strategy(run.strategy)
    span = span_of(run.started_at, run.timeframe, strategy.warmup, batch.epoch_bars)
    return Prepared(run, strategy, spec, span)


def _advance(batch: Batch, ready: Prepared) -> Tick | None:
    """Run the engine for one run; None when it has no new candle. Touches no database."""
    run = ready.run
    sim = advance(
        batch.shared.candles[ready.pair],
        batch.shared.signals_of(ready.strategy, ready.spec, ready.pair),
        ready.span,
        risk=_PARSED.risk(run.risk),
        config=_PARSED.config(run.costs),
        state=BrokerState.from_dict(run.broker_state),
        last_done=run.last_candle_ts,
        target=batch.candle_ts,
        fresh_bars=batch.fresh_bars,
    )
    if sim is None:
        return None
    batch.sims[run.id] = sim
    return Tick(
        run=run,
        trades=sim.trades.records(),
        equity_ts=sim.equity.ts.tolist(),
        equity=sim.equity.equity.tolist(),
        broker_state=sim.state.as_dict(),
        last_candle_ts=int(sim.equity.ts[-1]),
    )


def _bot_failure(exc: Exception, run_id: uuid.UUID | None = None) -> str:
    """Log a run's failure and return its reason; a transient error is re-raised instead.

    A transient error is the job's, not the bot's: it fails the job for RQ's retry.
    """
    if is_transient(exc):
        raise exc
    log.exception("bot_tick_failed", run_id=None if run_id is None else str(run_id))
    return f"{type(exc).__name__}: {exc}"


def _persist(ticks: list[Tick], failed: dict[uuid.UUID, str]) -> list[Tick]:
    """Write every tick in bulk; if the database refuses, one savepoint per run. Returns saved."""
    if not ticks:
        return ticks
    try:
        with db.begin_nested():
            save_ticks(ticks)
        return ticks
    except Exception as exc:
        _bot_failure(exc)  # logged; which run's rows were refused shows below
    saved = []
    for tick in ticks:
        try:
            with db.begin_nested():
                save_ticks([tick])
        except Exception as exc:
            failed[tick.run.id] = _bot_failure(exc, tick.run.id)
            continue
        saved.append(tick)
    return saved


def _load(batch: Batch, prepared: list[Prepared], mirrors: list[LiveRun]) -> None:
    """Read each pair's candles once, from the oldest bar any run of the batch needs."""
    oldest: dict[tuple[int, str], int] = {}
    for ready in prepared:
        first = ready.span.first_needed(ready.run.last_candle_ts)
        oldest[ready.pair] = min(oldest.get(ready.pair, batch.candle_ts), first)
    for mirror in mirrors:
        pair = (mirror.instrument_id, mirror.timeframe)
        first = first_new_bar(mirror, batch.epoch_bars)
        oldest[pair] = min(oldest.get(pair, batch.candle_ts), first)
    for pair, start in oldest.items():
        batch.shared.load(pair, start, batch.candle_ts)


def _follow(
    batch: Batch,
    routes: MirrorRoutes,
    runs: list[LiveRun],
    saved: list[Tick],
    failed: dict[uuid.UUID, str],
) -> list[Tick]:
    """Advance each mirror right after its source, from the source's saved simulation."""
    sources = {tick.run.id: tick.run for tick in saved}
    ticks: list[Tick] = []
    for mirror in runs:
        source = sources.get(routes.followers[mirror.id])
        if source is None:
            continue  # the source had nothing new or failed: the mirror waits for it
        candles = batch.shared.candles[(mirror.instrument_id, mirror.timeframe)]
        sim = batch.sims[source.id]
        try:
            tick = follow_source(candles, mirror, source, sim, batch.epoch_bars)
        except Exception as exc:
            failed[mirror.id] = _bot_failure(exc, mirror.id)
            continue
        if tick is not None:
            ticks.append(tick)
    saved_mirrors = _persist(ticks, failed)
    mark_following([tick.run.bot_id for tick in saved_mirrors])
    return saved_mirrors


def tick_bots(
    run_ids: list[str], candle_ts: int, fresh_bars: int | None = None
) -> dict[str, list[str]]:
    """Tick each running run of the batch up to the candle opening at ``candle_ts`` (ms).

    ``fresh_bars`` (default ``BOT_FRESH_BARS``) is how many bars up to the target a run may
    trade on; older bars of a catch-up only record equity. Returns the run ids by outcome:
    ``ticked``, ``skipped`` (not running, or nothing new) and ``failed`` (counted in
    ``consecutive_failures``, reason in ``error``).
    """
    settings = current_app.extensions["botyard.settings"]
    started = time.perf_counter()
    # Postgres gives up well before RQ's timeout would cut the job mid-statement: a
    # statement or lock wait this long fails as a transient error, and the job is retried.
    db.execute(text(f"SET LOCAL statement_timeout = '{DB_TIMEOUT_S}s'"))
    keys = [uuid.UUID(run_id) for run_id in run_ids]
    # Mirrors tick only right after their source, in its job (docs/execution.md, "Mirrors").
    routes = mirror_routes(keys)
    wanted = [key for key in keys if key not in routes.mirrors] + list(routes.followers)
    every = lock_running_runs(wanted)
    locked = [run for run in every if run.id not in routes.followers]
    mirrors = [run for run in every if run.id in routes.followers]
    batch = Batch(
        candle_ts=candle_ts,
        fresh_bars=settings.bot_fresh_bars if fresh_bars is None else fresh_bars,
        epoch_bars=settings.bot_epoch_bars,
        shared=shared_for(candle_ts),
    )
    failed: dict[uuid.UUID, str] = {}
    prepared: list[Prepared] = []
    for run in locked:
        try:
            prepared.append(_prepare(batch, run))
        except Exception as exc:
            failed[run.id] = _bot_failure(exc, run.id)
    _load(batch, prepared, mirrors)
    loaded = time.perf_counter()
    ticks: list[Tick] = []
    for ready in prepared:
        try:
            tick = _advance(batch, ready)
        except Exception as exc:
            failed[ready.run.id] = _bot_failure(exc, ready.run.id)
            continue
        if tick is not None:
            ticks.append(tick)
    computed = time.perf_counter()
    saved = _persist(ticks, failed)
    if mirrors:
        saved += _follow(batch, routes, mirrors, saved, failed)
    errored = count_failures(failed, settings.bot_max_failures, candle_ts)
    publish(every, saved, failed, candle_ts)
    db.commit()
    runs = {run.id: run for run in every} if errored else {}
    for key in errored:
        if move_to_error(key, settings.bot_max_failures, datetime.now(UTC), candle_ts):
            log.warning("bot_run_errored", run_id=str(key), error=failed[key])
            announce_error(runs[key], failed[key])
        db.commit()
    # The batch's own runs, then the mirrors that followed their sources.
    listed = [key for key in keys if key not in routes.followers] + [m.id for m in mirrors]
    ticked = {tick.run.id for tick in saved}
    outcome: dict[str, list[str]] = {"ticked": [], "skipped": [], "failed": []}
    for key in listed:
        state = "failed" if key in failed else "ticked" if key in ticked else "skipped"
        outcome[state].append(str(key))
    log.info(
        "bots_ticked",
        candle_ts=candle_ts,
        load_ms=round((loaded - started) * 1000, 1),
        engine_ms=round((computed - loaded) * 1000, 1),
        persist_ms=round((time.perf_counter() - computed) * 1000, 1),
        **{k: len(v) for k, v in outcome.items()},
    )
    return outcome
