"""Public bot cards (issue 14, item 5): `GET /api/v1/bots/{id}` for someone who may see a bot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event

from api.bots.cards import CARD_KEYS, bot_cards
from api.bots.schemas import OWNER_ONLY
from models.bots.bots import Bot, create_bot
from models.bots.runs import BotRun
from models.identity.users import disable_user
from models.people.tables import AccountSettings
from models.performance.tables import PERIODS, RunPerformance, RunReconciliation
from tests.api.conftest import BOT, END

BOTS = "/api/v1/bots"
METRIC_KEYS = {
    "period",
    "total_return",
    "sharpe",
    "psr",
    "max_drawdown",
    "days_tracked",
    "trades",
    "as_of",
}
# Everything that must never reach a card, at any depth.
PRIVATE_KEYS = {"params", "rules", "risk", "stop_loss", "broker_state", "email", "cash", "fee"}


def keys_anywhere(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for value in node.values() for k in keys_anywhere(value)}
    if isinstance(node, list):
        return {k for value in node for k in keys_anywhere(value)}
    return set()


def snapshot(run: BotRun, period: str, n: int) -> RunPerformance:
    """A stored snapshot with distinct values per period (what the performance job writes)."""
    return RunPerformance(
        run_id=run.id,
        period=period,
        metrics_version="1",
        as_of_ts=END - 3_600_000,
        start_ts=END - (n + 1) * 86_400_000,
        days_tracked=float(n) + 0.5,
        total_return=0.01 * n,
        annualized_return=0.1,
        annualized_volatility=0.2,
        sharpe=1.0 + n / 10,
        sortino=1.5,
        calmar=None,
        psr=0.5 + n / 1000,
        max_drawdown=0.001 * n,
        trades=n,
        win_rate=0.5,
        profit_factor=1.2,
    )


@pytest.fixture
def shared(db: Any, ticked_run: BotRun, live_owner: Any) -> dict[str, Any]:
    """The ticked run's bot made public, with snapshots and a finished reconciliation."""
    bot = db.get(Bot, ticked_run.bot_id)
    bot.visibility, bot.description = "public", "SMA 3/8 on BTC"
    live_owner.display_name = "Live Owner"
    for n, period in zip((3, 5), ("7d", "all"), strict=True):
        db.add(snapshot(ticked_run, period, n))
    db.add(
        RunReconciliation(
            run_id=ticked_run.id,
            period="all",
            status="done",
            as_of_ts=END - 3_600_000,
            matched=4,
            missing=0,
            extra=0,
            equity_max_abs_diff=0.25,
            diverged=False,
            computed_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        )
    )
    db.commit()
    return {"bot": bot, "run": ticked_run}


def test_another_user_reads_the_card_of_a_public_bot_and_nothing_private(
    client: FlaskClient, shared: dict[str, Any], live_owner: Any, stranger: dict[str, str]
) -> None:
    bot, run = shared["bot"], shared["run"]
    response = client.get(f"{BOTS}/{bot.id}", headers=stranger)
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == CARD_KEYS | set(OWNER_ONLY) | {"view", "forked_from"}
    assert body["view"] == "card"
    assert all(body[key] is None for key in OWNER_ONLY)
    assert not PRIVATE_KEYS & keys_anywhere({k: body[k] for k in CARD_KEYS})
    assert live_owner.email not in response.get_data(as_text=True)
    assert "fast" not in response.get_data(as_text=True)  # the template's params
    assert {k: body[k] for k in ("id", "name", "description", "symbol", "timeframe")} == {
        "id": str(bot.id),
        "name": "sma",
        "description": "SMA 3/8 on BTC",
        "symbol": "BTC-USD",
        "timeframe": "1h",
    }
    assert (body["strategy_family"], body["visibility"], body["status"]) == (
        "sma_crossover",
        "public",
        "running",
    )
    # The metrics are the stored snapshots, in period order.
    assert [m["period"] for m in body["metrics"]] == ["7d", "all"]
    for metric, n in zip(body["metrics"], (3, 5), strict=True):
        assert set(metric) == METRIC_KEYS
        assert metric["total_return"] == pytest.approx(0.01 * n)
        assert metric["sharpe"] == pytest.approx(1.0 + n / 10)
        assert metric["psr"] == pytest.approx(0.5 + n / 1000)
        assert metric["max_drawdown"] == pytest.approx(0.001 * n)
        assert (metric["days_tracked"], metric["trades"]) == (n + 0.5, n)
        assert metric["as_of"] == "2025-12-31T23:00:00+00:00"
    assert body["track"] == {
        "run_status": "running",
        "started_at": run.started_at.isoformat(),
        "days_tracked": 5.5,
    }
    assert body["owner"] == {
        "username": live_owner.username,
        "display_name": "Live Owner",
        "avatar_url": None,
        "profile_url": f"/api/v1/users/{live_owner.username}",
    }
    assert body["reconciliation"] == {
        "period": "all",
        "diverged": False,
        "checked_at": "2026-01-01T01:00:00+00:00",
        "equity_max_abs_diff": 0.25,
    }


def test_the_owner_still_gets_every_field_with_the_card(
    client: FlaskClient, shared: dict[str, Any], live_owner: Any
) -> None:
    bot = shared["bot"]
    body = client.get(f"{BOTS}/{bot.id}", headers=live_owner.headers).json
    assert body["view"] == "owner"
    assert body["strategy"] == BOT["strategy"]
    assert body["risk"]["stop_loss"] == 0.01
    assert (body["initial_capital"], body["fee"], body["slippage_bps"]) == (10_000.0, 0.001, 2.0)
    assert body["created_at"] is not None and body["last_error"] is None
    assert [m["period"] for m in body["metrics"]] == ["7d", "all"]
    assert body["owner"]["username"] == live_owner.username


def test_unlisted_is_a_card_private_hidden_and_disabled_owners_are_404(
    client: FlaskClient, db: Any, shared: dict[str, Any], live_owner: Any, stranger: dict[str, str]
) -> None:
    bot = shared["bot"]
    url = f"{BOTS}/{bot.id}"
    missing = client.get(f"{BOTS}/{uuid.uuid4()}", headers=stranger)
    assert missing.status_code == 404

    def same_as_missing() -> None:
        response = client.get(url, headers=stranger)
        assert response.status_code == 404
        assert response.json["message"] == missing.json["message"]

    bot.visibility = "unlisted"
    db.commit()
    assert client.get(url, headers=stranger).json["view"] == "card"
    bot.visibility = "private"
    db.commit()
    same_as_missing()
    bot.visibility, bot.hidden_at = "public", datetime.now(UTC)
    db.commit()
    same_as_missing()
    bot.hidden_at = None
    db.commit()
    assert client.get(url, headers=stranger).status_code == 200
    disable_user(live_owner, datetime.now(UTC))
    db.commit()
    same_as_missing()
    live_owner.is_active, live_owner.disabled_at = True, None
    live_owner.deletion_requested_at = datetime.now(UTC)
    db.commit()
    same_as_missing()
    assert client.get(url).status_code == 401  # cards are for signed-in users


def test_a_private_profile_shows_only_the_username_and_a_never_started_bot_has_no_track(
    db: Any, live_owner: Any
) -> None:
    draft = create_bot(live_owner.id, {**BOT, "name": "draft", "strategy": {"rules": RULES}})
    live_owner.display_name, live_owner.avatar_url = "Hidden", "https://example.org/a.png"
    db.merge(AccountSettings(user_id=live_owner.id, document={"profile_visibility": "private"}))
    db.commit()
    [card] = bot_cards([draft])
    assert set(card) == CARD_KEYS
    assert card["strategy_family"] == "rules"
    assert (card["metrics"], card["track"], card["reconciliation"]) == ([], None, None)
    assert card["owner"] == {
        "username": live_owner.username,
        "display_name": None,
        "avatar_url": None,
        "profile_url": None,
    }


RULES = {
    "entry": {"op": "crosses_above", "left": {"ind": "sma", "period": 3}, "right": {"const": 1}},
    "exit": {"op": "crosses_below", "left": {"ind": "sma", "period": 3}, "right": {"const": 1}},
}


def test_many_cards_cost_a_constant_number_of_queries(
    db: Any, shared: dict[str, Any], live_owner: Any, make_user: Any
) -> None:
    others = [create_bot(make_user().id, {**BOT, "name": f"b{n}"}) for n in range(5)]
    db.commit()
    bots = [shared["bot"], *others]
    for bot in bots:
        db.refresh(bot)  # loaded, as a caller's query leaves them
    engine = db.get_bind()

    def queries(of: list[Bot]) -> tuple[int, list[dict[str, Any]]]:
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        event.listen(engine, "before_cursor_execute", count)
        try:
            made = bot_cards(of)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements), made

    assert queries(bots[:1])[0] == 4
    n, cards = queries(bots)
    assert n == 4
    assert [card["id"] for card in cards] == [bot.id for bot in bots]
    assert [m["period"] for m in cards[0]["metrics"]] == [p for p in PERIODS if p in ("7d", "all")]


def test_a_profile_lists_cards_and_leaves_hidden_bots_out(
    client: FlaskClient, db: Any, shared: dict[str, Any], live_owner: Any
) -> None:
    bot = shared["bot"]
    profile = client.get(f"/api/v1/users/{live_owner.username}").json
    [card] = profile["public_bots"]
    assert set(card) == CARD_KEYS and card["id"] == str(bot.id)
    assert [m["period"] for m in card["metrics"]] == ["7d", "all"]
    bot.hidden_at = datetime.now(UTC)
    db.commit()
    profile = client.get(f"/api/v1/users/{live_owner.username}").json
    assert profile["public_bots"] == [] and profile["counts"]["public_bots"] == 0
