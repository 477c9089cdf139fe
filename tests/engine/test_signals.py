"""The crossing rule: a strict change of sign, skipping ties and warm-up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.signals import Signals, crosses_above, crosses_below, crossings

NAN = math.nan


def loop_crossings(d: list[float]) -> tuple[list[bool], list[bool]]:
    """The documented rule, bar by bar: compare with the last informative sign."""
    above, below, last = [], [], 0
    for value in d:
        sign = 0 if math.isnan(value) or value == 0 else (1 if value > 0 else -1)
        above.append(sign == 1 and last == -1)
        below.append(sign == -1 and last == 1)
        if sign:
            last = sign
    return above, below


@pytest.mark.parametrize(
    ("d", "above", "below"),
    [
        ([-1, 1], [0, 1], [0, 0]),
        ([1, -1], [0, 0], [0, 1]),
        ([-1, 0, 1], [0, 0, 1], [0, 0, 0]),  # a tie in between still crosses, after it
        ([-1, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]),
        ([-1, 0, -1], [0, 0, 0], [0, 0, 0]),  # touching is no cross
        ([1, 0, 1], [0, 0, 0], [0, 0, 0]),
        ([-1, 0], [0, 0], [0, 0]),  # the tie itself never crosses
        ([0, 1, -1], [0, 0, 0], [0, 0, 1]),  # a leading tie gives no earlier sign
        ([NAN, NAN, 1, -1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0]),  # warm-up is no cross
        ([NAN, -1, NAN, 1], [0, 0, 0, 1], [0, 0, 0, 0]),
        ([0, 0, 0], [0, 0, 0], [0, 0, 0]),
        ([1], [0], [0]),
        ([], [], []),
    ],
)
def test_crossing_cases(d: list[float], above: list[int], below: list[int]) -> None:
    a = np.array(d, dtype=np.float64)
    up, down = crossings(a, np.zeros(len(a)))
    assert up.tolist() == [bool(x) for x in above]
    assert down.tolist() == [bool(x) for x in below]


def test_crossing_against_a_scalar_and_helpers() -> None:
    a = np.array([1.0, 2.0, 3.0, 2.0, 3.0])
    # a - 2 = -1, 0, 1, 0, 1: crosses through the tie at bar 2, and only once.
    assert crosses_above(a, 2.0).tolist() == [False, False, True, False, False]
    assert not crosses_below(a, 2.0).any()
    assert crosses_above(a, 2.5).tolist() == [False, False, True, False, True]
    assert crosses_below(a, 2.5).tolist() == [False, False, False, True, False]


@pytest.mark.parametrize("seed", range(5))
def test_crossings_match_the_rule_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = rng.integers(-1, 2, size=2_000).astype(np.float64)
    d[:7] = NAN
    up, down = crossings(d, 0.0)
    expected_up, expected_down = loop_crossings(d.tolist())
    assert up.tolist() == expected_up
    assert down.tolist() == expected_down


def test_fast_path_without_ties_matches_the_rule() -> None:
    rng = np.random.default_rng(1)
    d = rng.standard_normal(5_000)
    d[:3] = NAN
    up, down = crossings(d, 0.0)
    expected_up, expected_down = loop_crossings(d.tolist())
    assert up.tolist() == expected_up
    assert down.tolist() == expected_down


def test_signals_shape_checks() -> None:
    with pytest.raises(ValueError, match="differ"):
        Signals(np.zeros(3, bool), np.zeros(2, bool), np.zeros(3, bool), np.zeros(3, bool))
    with pytest.raises(ValueError, match="scale_in"):
        Signals.none(2).__class__(*(np.zeros(2, bool),) * 4, scale_in=0.0)
    signals = Signals.none(4)
    assert len(signals) == 4 and len(signals.slice(1, 3)) == 2


def test_slice_keeps_each_column_and_scale_in() -> None:
    bars = [True, False, True, True, False]
    signals = Signals(
        np.array(bars), ~np.array(bars), np.zeros(5, bool), np.ones(5, bool), scale_in=0.5
    )
    part = signals.slice(1, 4)
    assert part.long_entry.tolist() == [False, True, True]
    assert part.long_exit.tolist() == [True, False, False]
    assert part.short_entry.tolist() == [False] * 3 and part.short_exit.tolist() == [True] * 3
    assert part.scale_in == 0.5 and len(part) == 3
