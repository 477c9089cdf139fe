"""Schedule decisions: daily windows (days, midnight wrap, boundaries), start, stop and moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from models.bots.schedules import in_window, should_start, should_stop, window_action

# 2026-01-05 is a Monday.
MON = datetime(2026, 1, 5, tzinfo=UTC)


def at(day: int, hhmm: str, second: int = 0) -> datetime:
    """Monday + ``day`` days at ``hhmm`` UTC."""
    hours, minutes = map(int, hhmm.split(":"))
    return MON + timedelta(days=day, hours=hours, minutes=minutes, seconds=second)


def windows(*items: dict[str, Any]) -> dict[str, Any]:
    return {"start_at": None, "stop_at": None, "windows": list(items)}


OFFICE = windows({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:30"})
NIGHT = windows({"days": ["fri"], "start": "22:00", "end": "02:00"})


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (at(0, "09:00"), True),  # start inclusive
        (at(0, "08:59", 59), False),
        (at(0, "17:29", 59), True),
        (at(0, "17:30"), False),  # end exclusive
        (at(4, "12:00"), True),  # Friday
        (at(5, "12:00"), False),  # Saturday is not listed
    ],
)
def test_a_day_window(now: datetime, inside: bool) -> None:
    assert in_window(OFFICE, now) is inside


@pytest.mark.parametrize(
    ("now", "inside"),
    [
        (at(4, "21:59"), False),
        (at(4, "22:00"), True),  # Friday night
        (at(4, "23:59", 59), True),
        (at(5, "00:00"), True),  # Saturday's early hours belong to Friday's window
        (at(5, "01:59"), True),
        (at(5, "02:00"), False),
        (at(5, "22:30"), False),  # Saturday night is not a Friday
        (at(3, "01:00"), False),  # Thursday's early hours belong to Wednesday (not listed)
        (at(0, "01:00"), False),  # Monday's early hours belong to Sunday (not listed)
    ],
)
def test_a_window_that_wraps_midnight(now: datetime, inside: bool) -> None:
    assert in_window(NIGHT, now) is inside


def test_the_wrap_from_sunday_lands_on_monday() -> None:
    sunday_night = windows({"days": ["sun"], "start": "23:00", "end": "00:30"})
    assert in_window(sunday_night, at(0, "00:15")) is True  # Monday 00:15, Sunday's window
    assert in_window(sunday_night, at(0, "23:30")) is False  # Monday night


def test_days_left_out_mean_every_day_and_any_window_will_do() -> None:
    daily = windows({"start": "06:00", "end": "07:00"}, {"start": "18:00", "end": "19:00"})
    assert all(in_window(daily, at(day, "06:30")) for day in range(7))
    assert in_window(daily, at(2, "18:00")) is True
    assert in_window(daily, at(2, "12:00")) is False


def test_no_windows_put_no_limit_on_running() -> None:
    assert in_window(None, at(0, "03:00")) is True
    assert in_window(windows(), at(0, "03:00")) is True


def test_now_in_another_zone_is_read_as_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    # 04:30 in New York on Monday is 09:30 UTC: inside the office window.
    assert in_window(OFFICE, at(0, "09:30").astimezone(new_york)) is True


START = {"start_at": at(0, "09:00").isoformat(), "stop_at": None, "windows": []}


@pytest.mark.parametrize(
    ("status", "last_started", "now", "expected"),
    [
        ("draft", None, at(0, "09:00"), True),
        ("draft", None, at(0, "08:59"), False),  # not yet
        ("stopped", at(0, "08:00"), at(0, "09:01"), True),  # an earlier run does not count
        ("stopped", at(0, "09:00"), at(0, "10:00"), False),  # started at start_at already
        ("error", None, at(0, "09:01"), False),  # an error waits for the owner
        ("running", None, at(0, "09:01"), False),
        ("paused", None, at(0, "09:01"), False),
    ],
)
def test_should_start(
    status: str, last_started: datetime | None, now: datetime, expected: bool
) -> None:
    assert should_start(START, status, last_started, now) is expected


def test_no_start_once_stop_at_has_passed_too() -> None:
    both = {**START, "stop_at": at(0, "10:00").isoformat()}
    assert should_start(both, "draft", None, at(0, "09:59")) is True
    assert should_start(both, "draft", None, at(0, "10:00")) is False
    assert should_start({"windows": []}, "draft", None, at(0, "10:00")) is False


STOP = {"start_at": None, "stop_at": at(0, "17:00").isoformat(), "windows": []}


@pytest.mark.parametrize(
    ("status", "run_started", "now", "expected"),
    [
        ("running", at(0, "09:00"), at(0, "17:00"), True),
        ("paused", at(0, "09:00"), at(0, "17:05"), True),
        ("running", at(0, "09:00"), at(0, "16:59"), False),  # not yet
        ("running", at(0, "17:00"), at(0, "18:00"), False),  # the owner started it after
        ("stopped", at(0, "09:00"), at(0, "18:00"), False),
        ("running", None, at(0, "18:00"), False),
    ],
)
def test_should_stop(
    status: str, run_started: datetime | None, now: datetime, expected: bool
) -> None:
    assert should_stop(STOP, status, run_started, now) is expected


@pytest.mark.parametrize(
    ("status", "paused_by", "now", "expected"),
    [
        ("running", None, at(0, "08:00"), "pause"),
        ("running", None, at(0, "10:00"), None),
        ("paused", "schedule", at(0, "10:00"), "resume"),
        ("paused", "schedule", at(0, "08:00"), None),
        ("paused", "owner", at(0, "10:00"), None),  # the owner's pause is the owner's
        ("stopped", None, at(0, "08:00"), None),
        ("draft", None, at(0, "10:00"), None),
    ],
)
def test_window_action(
    status: str, paused_by: str | None, now: datetime, expected: str | None
) -> None:
    assert window_action(OFFICE, status, paused_by, now) == expected


def test_a_bot_the_schedule_paused_is_resumed_once_its_windows_are_removed() -> None:
    assert window_action(None, "paused", "schedule", at(0, "03:00")) == "resume"
    assert window_action(windows(), "paused", "schedule", at(0, "03:00")) == "resume"
