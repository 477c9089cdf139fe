"""The ranking formula (public and versioned): what each board sorts on and how ties break.

Formula 1 (docs/leaderboards.md#formula): a board is a period and a metric; its score is
the metric of the bot's snapshot for that period (``return`` is the period's total
return). Only eligible bots with a finite score are ranked. Higher is better; ties go to
the longer track (days tracked in the period), then the older bot, then the smaller bot
id, so the same inputs always give the same board. Instrument and strategy ranks are the
same order within the bot's instrument and strategy family.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from models.leaderboards.eligibility import Candidate, Snapshot
from models.leaderboards.tables import BOARD_METRICS
from models.performance.tables import PERIODS

FORMULA_VERSION = "1"
# Which snapshot field each board metric ranks on.
METRIC_FIELDS = {"return": "total_return", "sharpe": "sharpe", "psr": "psr", "calmar": "calmar"}


class Placing(NamedTuple):
    """One row of a board, ready to store (``components`` is JSON text).

    A named tuple, not a dataclass: a recompute makes 160,000 of them for 10,000 bots.
    """

    period: str
    metric: str
    rank: int
    bot_id: uuid.UUID
    owner_id: uuid.UUID
    run_id: uuid.UUID
    instrument: str
    strategy: str
    instrument_rank: int
    strategy_rank: int
    score: float
    components: str


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def components_of(snap: Snapshot) -> str:
    """The values a bot was ranked on for one period, as the JSON an entry stores."""
    as_of = datetime.fromtimestamp(snap.as_of_ts / 1000, UTC).isoformat()
    return orjson.dumps(
        {
            "formula_version": FORMULA_VERSION,
            "metrics_version": snap.metrics_version,
            "days_tracked": snap.days_tracked,
            "trades": snap.trades,
            "max_drawdown": _finite(snap.max_drawdown),
            "total_return": _finite(snap.total_return),
            "sharpe": _finite(snap.sharpe),
            "psr": _finite(snap.psr),
            "calmar": _finite(snap.calmar),
            "as_of": as_of,
        }
    ).decode()


def rank_boards(candidates: Iterable[Candidate]) -> list[Placing]:
    """Every board's placings among the eligible candidates (boards in PERIODS x METRICS)."""
    eligible = [(c, c.run_id) for c in candidates if c.eligible and c.run_id is not None]
    placings: list[Placing] = []
    append = placings.append
    for period in PERIODS:
        rows = [
            (c, run, c.snapshots[period], components_of(c.snapshots[period]))
            for c, run in eligible
            if period in c.snapshots
        ]
        for metric in BOARD_METRICS:
            name = METRIC_FIELDS[metric]
            scored = []
            for candidate, run, snap, text in rows:
                score = getattr(snap, name)
                if score is not None and math.isfinite(score):
                    key = (-score, -snap.days_tracked, candidate.created_at, candidate.bot_id)
                    scored.append((key, score, candidate, run, text))
            scored.sort(key=lambda item: item[0])
            by_instrument: dict[str, int] = {}
            by_strategy: dict[str, int] = {}
            for rank, (_, score, c, run, text) in enumerate(scored, start=1):
                instrument_rank = by_instrument[c.instrument] = (
                    by_instrument.get(c.instrument, 0) + 1
                )
                strategy_rank = by_strategy[c.strategy] = by_strategy.get(c.strategy, 0) + 1
                append(
                    Placing(
                        period,
                        metric,
                        rank,
                        c.bot_id,
                        c.owner_id,
                        run,
                        c.instrument,
                        c.strategy,
                        instrument_rank,
                        strategy_rank,
                        score,
                        text,
                    )
                )
    return placings
