"""Bot visibility: private by default (or my settings' default), set by its owner, and what a
public profile shows (public bots with a live run, nothing else)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient

from models.bots.bots import Bot, create_bot
from models.bots.runs import start_bot
from tests.api.conftest import BOT

BOTS = "/api/v1/bots"


def create(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    return client.post(BOTS, json={**BOT, **fields}, headers=headers)


def test_a_new_bot_is_private_unless_asked_or_my_settings_say_otherwise(
    client: FlaskClient, live_owner: Any
) -> None:
    headers = live_owner.headers
    assert create(client, headers, name="a").json["visibility"] == "private"
    assert create(client, headers, name="b", visibility="public").json["visibility"] == "public"
    settings = client.patch(
        "/api/v1/me/settings", json={"default_bot_visibility": "unlisted"}, headers=headers
    )
    assert settings.status_code == 200, settings.json
    assert create(client, headers, name="c").json["visibility"] == "unlisted"
    assert create(client, headers, name="d", visibility="private").json["visibility"] == "private"


def test_the_owner_changes_it_even_while_the_bot_runs_and_bad_values_are_422(
    client: FlaskClient, db: Any, live_owner: Any, stranger: dict[str, str]
) -> None:
    bot = create_bot(live_owner.id, BOT)
    start_bot(live_owner.id, bot.id, limit=10, now=datetime.now(UTC))
    db.commit()
    url = f"{BOTS}/{bot.id}"
    changed = client.patch(url, json={"visibility": "public"}, headers=live_owner.headers)
    assert changed.status_code == 200 and changed.json["visibility"] == "public"
    assert client.get(url, headers=live_owner.headers).json["visibility"] == "public"
    for bad in ("everyone", "", None, 1):
        refused = client.patch(url, json={"visibility": bad}, headers=live_owner.headers)
        assert refused.status_code == 422
        assert "visibility" in refused.json["errors"]["json"]
    # Someone else's bot is never theirs to change, public or not (they may read its card).
    assert client.patch(url, json={"visibility": "private"}, headers=stranger).status_code == 404
    db.refresh(bot)
    assert bot.visibility == "public"


def test_a_profile_lists_public_bots_with_a_live_run_only(
    client: FlaskClient, db: Any, live_owner: Any, stranger: dict[str, str]
) -> None:
    now = datetime.now(UTC)

    def bot(name: str, visibility: str, start: bool) -> Bot:
        made = create_bot(live_owner.id, {**BOT, "name": name, "visibility": visibility})
        if start:
            start_bot(live_owner.id, made.id, limit=10, now=now)
        return made

    shown = bot("shown", "public", start=True)
    bot("public draft", "public", start=False)
    bot("unlisted runner", "unlisted", start=True)
    bot("private runner", "private", start=True)
    db.commit()
    profile = client.get(f"/api/v1/users/{live_owner.username}", headers=stranger).json
    [card] = profile["public_bots"]  # the bot's card (tests/api/test_bot_cards.py)
    assert {k: card[k] for k in ("id", "name", "symbol", "timeframe")} == {
        "id": str(shown.id),
        "name": "shown",
        "symbol": "BTC-USD",
        "timeframe": "1h",
    }
    assert profile["counts"]["public_bots"] == 1
    # Paused still counts as live; stopped does not.
    assert client.post(f"{BOTS}/{shown.id}/pause", headers=live_owner.headers).status_code == 200
    assert len(client.get(f"/api/v1/users/{live_owner.username}").json["public_bots"]) == 1
    assert client.post(f"{BOTS}/{shown.id}/stop", headers=live_owner.headers).status_code == 200
    assert client.get(f"/api/v1/users/{live_owner.username}").json["public_bots"] == []
