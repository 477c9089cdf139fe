"""Bot schedules through the API: stored normalised, returned, cleared; validation is a 422."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

BOTS = "/api/v1/bots"
SMA = {"template": "sma_crossover", "params": {"fast": 10, "slow": 30}}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
EVERY_DAY = [*WEEKDAYS, "sat", "sun"]


def new_bot(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Scheduled", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    return client.post(BOTS, json={**body, **fields}, headers=headers)


def test_a_schedule_is_stored_normalised_and_returned(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    schedule = {
        "start_at": "2026-01-05T10:00:00+01:00",  # stored in UTC
        "stop_at": "2026-01-09T17:00:00",  # no offset: UTC
        "windows": [
            {"days": ["fri", "mon"], "start": "22:00", "end": "02:00"},
            {"start": "09:00", "end": "17:30"},
        ],
    }
    created = new_bot(client, owner, schedule=schedule)
    assert created.status_code == 201, created.json
    expected = {
        "start_at": "2026-01-05T09:00:00+00:00",
        "stop_at": "2026-01-09T17:00:00+00:00",
        "windows": [
            {"days": ["mon", "fri"], "start": "22:00", "end": "02:00"},
            {"days": EVERY_DAY, "start": "09:00", "end": "17:30"},
        ],
    }
    assert created.json["schedule"] == expected
    url = f"{BOTS}/{created.json['id']}"
    assert client.get(url, headers=owner).json["schedule"] == expected
    assert client.get(BOTS, headers=owner).json["items"][0]["schedule"] == expected


def test_patch_replaces_the_schedule_whole_and_null_clears_it(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    bot = new_bot(client, owner).json
    assert bot["schedule"] is None
    url = f"{BOTS}/{bot['id']}"

    patched = client.patch(
        url, json={"schedule": {"stop_at": "2026-02-01T00:00:00Z"}}, headers=owner
    )
    assert patched.status_code == 200, patched.json
    assert patched.json["schedule"] == {
        "start_at": None,
        "stop_at": "2026-02-01T00:00:00+00:00",
        "windows": [],
    }
    # Replaced, not merged: the new schedule has windows and no stop_at.
    window = {"days": WEEKDAYS, "start": "08:00", "end": "16:00"}
    patched = client.patch(url, json={"schedule": {"windows": [window]}}, headers=owner)
    assert patched.json["schedule"] == {"start_at": None, "stop_at": None, "windows": [window]}
    # Other fields leave it alone.
    assert client.patch(url, json={"name": "Renamed"}, headers=owner).json["schedule"]["windows"]

    cleared = client.patch(url, json={"schedule": None}, headers=owner)
    assert cleared.status_code == 200, cleared.json
    assert cleared.json["schedule"] is None
    assert client.get(url, headers=owner).json["schedule"] is None


def test_a_patch_cannot_leave_out_a_windows_required_times(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    # A PATCH is partial for the bot's fields, never inside the schedule.
    url = f"{BOTS}/{new_bot(client, owner).json['id']}"
    response = client.patch(url, json={"schedule": {"windows": [{"end": "10:00"}]}}, headers=owner)
    assert response.status_code == 422, response.json
    errors = response.json["errors"]["json"]["schedule"]["windows"]["0"]
    assert errors == {"start": ["Missing data for required field."]}


@pytest.mark.parametrize("steps", [("start",), ("start", "pause")])
def test_a_live_bots_schedule_stays_editable(
    client: FlaskClient, instruments: None, owner: dict[str, str], steps: tuple[str, ...]
) -> None:
    url = f"{BOTS}/{new_bot(client, owner).json['id']}"
    for step in steps:
        assert client.post(f"{url}/{step}", headers=owner).status_code == 200
    schedule = {"stop_at": "2026-02-01T00:00:00Z"}
    patched = client.patch(url, json={"schedule": schedule}, headers=owner)
    assert patched.status_code == 200, patched.json
    assert patched.json["schedule"]["stop_at"] == "2026-02-01T00:00:00+00:00"
    assert patched.json["status"] == ("paused" if "pause" in steps else "running")
    refused = client.patch(url, json={"fee": 0.0}, headers=owner)
    assert refused.status_code == 409
    assert "name, description and schedule stay editable" in refused.json["message"]


def window(**fields: Any) -> dict[str, Any]:
    return {"windows": [{"start": "09:00", "end": "17:00", **fields}]}


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        (
            {"start_at": "2026-01-05T10:00:00Z", "stop_at": "2026-01-05T10:00:00Z"},
            ("stop_at",),
            "stop_at must be after start_at.",
        ),
        (
            {"start_at": "2026-01-05T10:00:00+00:00", "stop_at": "2026-01-05T10:30:00+01:00"},
            ("stop_at",),
            "stop_at must be after start_at.",
        ),
        ({"start_at": "next monday"}, ("start_at",), "Not a valid datetime."),
        (window(start="9:00"), ("windows", "0", "start"), "Use HH:MM (UTC), 00:00 to 23:59."),
        (window(end="24:00"), ("windows", "0", "end"), "Use HH:MM (UTC), 00:00 to 23:59."),
        (window(end="17:60"), ("windows", "0", "end"), "Use HH:MM (UTC), 00:00 to 23:59."),
        (window(end="09:00"), ("windows", "0", "end"), "end must differ from start."),
        (
            window(days=["mon", "funday"]),
            ("windows", "0", "days", "1"),
            "Must be one of: mon, tue, wed, thu, fri, sat, sun.",
        ),
        (
            window(days=["tue", "mon", "tue"]),
            ("windows", "0", "days"),
            "Each day at most once (tue repeated).",
        ),
        (
            window(days=[]),
            ("windows", "0", "days"),
            "Give at least one day, or leave days out for every day.",
        ),
        (
            {"windows": [{"start": "09:00", "end": "10:00"}] * 15},
            ("windows",),
            "At most 14 windows.",
        ),
        (window(timezone="Europe/Paris"), ("windows", "0", "timezone"), "Unknown field."),
        ({"every": "day"}, ("every",), "Unknown field."),
    ],
)
def test_invalid_schedules_are_422_with_a_message(
    client: FlaskClient,
    instruments: None,
    owner: dict[str, str],
    schedule: dict[str, Any],
    path: tuple[str, ...],
    message: str,
) -> None:
    bot = new_bot(client, owner).json
    for response in (
        new_bot(client, owner, name="Other", schedule=schedule),
        client.patch(f"{BOTS}/{bot['id']}", json={"schedule": schedule}, headers=owner),
    ):
        assert response.status_code == 422, response.json
        assert response.json["code"] == 422 and response.json["status"] == "Unprocessable Entity"
        errors = response.json["errors"]["json"]["schedule"]
        for key in path:
            errors = errors[key]
        assert errors == [message]
    assert client.get(f"{BOTS}/{bot['id']}", headers=owner).json["schedule"] is None


def test_fourteen_windows_are_accepted(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    schedule = {"windows": [{"days": [day], "start": "09:00", "end": "12:00"} for day in EVERY_DAY]}
    schedule["windows"] += [{"days": [d], "start": "13:00", "end": "17:00"} for d in EVERY_DAY]
    created = new_bot(client, owner, schedule=schedule)
    assert created.status_code == 201, created.json
    assert len(created.json["schedule"]["windows"]) == 14
