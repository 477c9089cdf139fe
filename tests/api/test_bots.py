"""Bots API: create, list, read, change, delete; validation; ownership (another's bot is a 404)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

BOTS = "/api/v1/bots"
SMA = {"template": "sma_crossover", "params": {"fast": 10, "slow": 30}}


def new_bot(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Trend follower", "symbol": "BTC-USD", "timeframe": "1h", "strategy": SMA}
    return client.post(BOTS, json={**body, **fields}, headers=headers)


def test_strategy_catalogue_is_public_and_complete(client: FlaskClient) -> None:
    body = client.get("/api/v1/strategies").json
    keys = {t["key"] for t in body["templates"]}
    assert {
        "sma_crossover",
        "ema_crossover",
        "rsi_mean_reversion",
        "bollinger_bands",
        "macd",
        "donchian_breakout",
        "periodic_dca",
    } <= keys
    sma = next(t for t in body["templates"] if t["key"] == "sma_crossover")
    fast = next(p for p in sma["params"] if p["name"] == "fast")
    assert fast["type"] == "int" and fast["min"] >= 1 and fast["description"]
    assert "rules" in body and "risk" in body


def test_create_read_list_update_delete(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    created = new_bot(client, owner, description="Buys strength")
    assert created.status_code == 201, created.json
    bot = created.json
    assert bot["status"] == "draft" and bot["symbol"] == "BTC-USD"
    assert bot["strategy"] == {"template": "sma_crossover", "params": {"fast": 10, "slow": 30}}
    assert bot["risk"]["direction"] == "long_only"  # defaults filled in by the engine
    assert bot["initial_capital"] == 10_000 and bot["fee"] == 0.001

    url = f"{BOTS}/{bot['id']}"
    detail = client.get(url, headers=owner).json
    assert {key: detail[key] for key in bot} == bot  # plus the card (tests/api/test_bot_cards.py)
    assert detail["last_error"] is None and detail["view"] == "owner"
    new_bot(client, owner, name="Second", symbol="ETH-USD")
    listing = client.get(f"{BOTS}?page_size=1", headers=owner).json
    assert listing["total"] == 2 and len(listing["items"]) == 1
    assert client.get(f"{BOTS}?q=trend", headers=owner).json["total"] == 1

    patched = client.patch(
        url, json={"name": "Renamed", "risk": {"stop_loss": 0.05}}, headers=owner
    ).json
    assert patched["name"] == "Renamed" and patched["risk"]["stop_loss"] == 0.05
    assert patched["strategy"] == bot["strategy"]  # untouched fields stay
    assert client.patch(url, json={"status": "running"}, headers=owner).status_code == 422

    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(url, headers=owner).status_code == 404


def test_another_users_bot_is_not_found(
    client: FlaskClient, instruments: None, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    url = f"{BOTS}/{new_bot(client, owner).json['id']}"
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"headers": stranger}
        if method == "patch":
            kwargs["json"] = {"name": "mine now"}
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code == 404, method
        assert response.json["message"] == "No bot with that id."
    assert client.get(BOTS, headers=stranger).json["total"] == 0
    assert client.get(url, headers=owner).json["name"] == "Trend follower"
    assert client.get(BOTS).status_code == 401


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"strategy": {"template": "sma_crossover", "params": {"fast": 50, "slow": 20}}}, "slow"),
        ({"strategy": {"template": "sma_crossover", "params": {"fast": 0}}}, "fast"),
        ({"strategy": {"template": "sma_crossover", "params": {"speed": 3}}}, "speed"),
        ({"strategy": {"template": "moon_shot"}}, "template"),
        ({"strategy": {"rules": {"entry": {"op": "<"}}}}, "entry"),
        ({"strategy": {}}, "template"),
        ({"risk": {"stop_loss": 2}}, "stop_loss"),
        ({"symbol": "NOPE-USD"}, "NOPE-USD"),
        ({"timeframe": "2h"}, "timeframe"),
        ({"initial_capital": -5}, "initial_capital"),
        ({"name": ""}, "name"),
        ({"owner_id": "someone"}, "owner_id"),
    ],
)
def test_invalid_bots_are_422_with_the_field(
    client: FlaskClient,
    instruments: None,
    owner: dict[str, str],
    fields: dict[str, Any],
    where: str,
) -> None:
    response = new_bot(client, owner, **fields)
    assert response.status_code in (404, 422), response.json
    assert response.json["code"] == response.status_code
    assert where in str(response.json), response.json


def test_names_are_unique_per_owner(
    client: FlaskClient, instruments: None, owner: dict[str, str], stranger: dict[str, str]
) -> None:
    assert new_bot(client, owner).status_code == 201
    duplicate = new_bot(client, owner)
    assert duplicate.status_code == 409 and "already have a bot" in duplicate.json["message"]
    assert new_bot(client, stranger).status_code == 201  # another owner may reuse the name


def test_rule_bots_are_accepted(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    rules = {
        "entry": {
            "all": [
                {
                    "op": "crosses_above",
                    "left": {"ind": "sma", "period": 10},
                    "right": {"ind": "sma", "period": 30},
                },
                {"op": "<", "left": {"ind": "rsi", "period": 14}, "right": {"const": 70}},
            ]
        },
        "exit": {
            "op": "crosses_below",
            "left": {"price": "close"},
            "right": {"ind": "ema", "period": 20},
        },
    }
    response = new_bot(client, owner, strategy={"rules": rules})
    assert response.status_code == 201, response.json
    assert response.json["strategy"]["rules"]["entry"]["all"][1]["right"] == {"const": 70}


def test_patching_risk_merges_keeps_absent_fields_and_null_clears_one(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    risk = {"stop_loss": 0.05, "take_profit": 0.2, "direction": "long_short", "sizing": "fraction"}
    bot = new_bot(client, owner, risk={**risk, "fraction": 0.5}).json
    url = f"{BOTS}/{bot['id']}"

    # JSON merge patch (RFC 7396): the given field changes, the absent ones keep their value.
    kept = client.patch(url, json={"risk": {"trailing_stop": 0.08}}, headers=owner)
    assert kept.status_code == 200, kept.json
    assert kept.json["risk"] == {**risk, "fraction": 0.5, "trailing_stop": 0.08}

    # null clears a field: an exit is removed, a choice goes back to its default.
    cleared = client.patch(
        url, json={"risk": {"stop_loss": None, "direction": None}}, headers=owner
    ).json
    assert cleared["risk"] == {
        "stop_loss": None,
        "take_profit": 0.2,
        "trailing_stop": 0.08,
        "direction": "long_only",
        "sizing": "fraction",
        "fraction": 0.5,
    }
    assert client.get(url, headers=owner).json["risk"] == cleared["risk"]

    # risk: null puts every risk option back to its default.
    reset = client.patch(url, json={"risk": None}, headers=owner).json
    assert reset["risk"] == new_bot(client, owner, name="Fresh").json["risk"]
    assert reset["risk"]["take_profit"] is None and reset["risk"]["sizing"] == "all_in"


def test_patching_strategy_replaces_it_whole(
    client: FlaskClient, instruments: None, owner: dict[str, str]
) -> None:
    bot = new_bot(client, owner).json  # sma_crossover, fast 10, slow 30
    url = f"{BOTS}/{bot['id']}"
    patched = client.patch(
        url, json={"strategy": {"template": "sma_crossover", "params": {"fast": 5}}}, headers=owner
    ).json
    catalogue = client.get("/api/v1/strategies").json["templates"]
    sma = next(t for t in catalogue if t["key"] == "sma_crossover")
    default_slow = next(p["default"] for p in sma["params"] if p["name"] == "slow")
    assert patched["strategy"] == {
        "template": "sma_crossover",
        "params": {"fast": 5, "slow": default_slow},  # slow is not kept: the default again
    }
    price = {"price": "close"}
    rules = {
        "entry": {"op": "crosses_above", "left": price, "right": {"ind": "sma", "period": 20}},
        "exit": {"op": "crosses_below", "left": price, "right": {"ind": "sma", "period": 20}},
    }
    replaced = client.patch(url, json={"strategy": {"rules": rules}}, headers=owner)
    assert replaced.status_code == 200, replaced.json
    assert set(replaced.json["strategy"]) == {"rules"}
