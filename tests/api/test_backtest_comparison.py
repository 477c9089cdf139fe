"""A bot's backtests with their metrics, and backtests compared side by side."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.test_backtests import END, START, drain, post
from tests.helpers import load_btc_history

BOTS = "/api/v1/bots"
COMPARE = "/api/v1/backtests/compare"


@pytest.fixture
def market(db: Any) -> None:
    load_btc_history(START, END)
    db.commit()


def make_bot(client: FlaskClient, headers: dict[str, str], name: str, fast: int) -> str:
    body = {
        "name": name,
        "symbol": "BTC-USD",
        "timeframe": "1h",
        "strategy": {"template": "sma_crossover", "params": {"fast": fast, "slow": 20}},
    }
    response = client.post(BOTS, json=body, headers=headers)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


def test_a_bots_backtests_and_a_comparison_of_them(
    app: Flask, client: FlaskClient, market: None, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    fast, slow = make_bot(client, owner, "fast", 3), make_bot(client, owner, "slow", 8)
    ids = []
    for bot in (fast, fast, slow):  # one at a time: a user may queue only two
        ids.append(post(client, owner, bot_id=bot).json["id"])
        drain(app)

    listed = client.get(f"{BOTS}/{fast}/backtests", headers=owner).json
    # (Newest first; in a test's single transaction both have the same created_at.)
    assert sorted(item["id"] for item in listed["items"]) == sorted(ids[:2])
    assert listed["total"] == 2
    for item in listed["items"]:
        assert item["status"] == "succeeded" and item["metrics_version"]
        assert item["metrics"]["total_return"] is not None
    only = client.get(f"{BOTS}/{slow}/backtests?status=failed", headers=owner).json
    assert only["items"] == [] and only["total"] == 0

    compared = client.get(f"{COMPARE}?ids={ids[0]},{ids[2]}&points=50", headers=owner)
    assert compared.status_code == 200, compared.json
    items = compared.json["items"]
    assert [item["id"] for item in items] == [ids[0], ids[2]]  # in the order asked for
    for item in items:
        single = client.get(f"/api/v1/backtests/{item['id']}", headers=owner).json
        assert item["metrics"] == single["metrics"]
        curve = client.get(f"/api/v1/backtests/{item['id']}/equity?points=50", headers=owner)
        raw = curve.json["rows"]
        assert [ts for ts, _ in item["equity"]] == [ts for ts, _ in raw]
        assert item["equity"][0][1] == 1.0
        for (_, scaled), (_, equity) in zip(item["equity"], raw, strict=True):
            assert abs(scaled - equity / raw[0][1]) < 1e-12
        assert item["equity"][0][0] >= START and item["equity"][-1][0] < END
    # The two strategies differ, so their curves do.
    assert items[0]["equity"] != items[1]["equity"]


def test_compare_needs_two_to_ten_of_my_backtests(
    app: Flask, client: FlaskClient, market: None, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    bot = make_bot(client, owner, "b", 5)
    mine = [post(client, owner, bot_id=bot).json["id"] for _ in range(2)]
    queued = client.get(f"{COMPARE}?ids={mine[0]},{mine[1]}", headers=owner).json["items"]
    assert [item["equity"] for item in queued] == [[], []]  # not run yet: no curve
    for bad in ("", f"ids={mine[0]}", "ids=" + ",".join([mine[0]] * 11), "ids=x,y", "ids=1,2"):
        refused = client.get(f"{COMPARE}?{bad}", headers=owner)
        assert refused.status_code == 422, bad
    assert (
        client.get(f"{COMPARE}?ids={mine[0]},{mine[1]}&points=1", headers=owner).status_code == 422
    )
    # Someone else's backtest anywhere in the list: 404, as for one that does not exist.
    theirs = client.get(f"{COMPARE}?ids={mine[0]},{mine[1]}", headers=stranger)
    assert theirs.status_code == 404
    assert client.get(f"{BOTS}/{bot}/backtests", headers=stranger).status_code == 404
    assert client.get(f"{COMPARE}?ids={mine[0]},{mine[1]}").status_code == 401


def test_the_bot_filter_is_fixed_by_the_path(
    client: FlaskClient, market: None, owner: dict[str, str]
) -> None:
    bot = make_bot(client, owner, "c", 5)
    refused = client.get(f"{BOTS}/{bot}/backtests?bot_id={bot}", headers=owner)
    assert refused.status_code == 422
