"""Every notification event has a subject and a text and HTML template that render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from jinja2 import TemplateNotFound

from models.people.events import EVENTS
from workers.event_mail import EVENT_SUBJECTS, render_digest, render_event

FRONTEND = "https://app.botyard.test"
AT = "2026-12-07T21:05:00+00:00"

# Representative data for each event: what the code that calls notify() passes.
SAMPLES: dict[str, dict[str, Any]] = {
    "backtest.finished": {
        "backtest_id": "b-1",
        "bot_name": "sma",
        "symbol": "BTC-USD",
        "timeframe": "1h",
        "total_return": 0.1234,
        "max_drawdown": -0.05,
        "sharpe": 1.5,
        "trades": 12,
    },
    "backtest.failed": {"backtest_id": "b-2", "bot_name": None, "symbol": "ETH-USD", "error": "x"},
    "bot.started": {"bot_id": "k-1", "bot_name": "sma"},
    "bot.stopped": {"bot_id": "k-1", "bot_name": "sma", "reason": "stopped by you"},
    "bot.paused": {"bot_id": "k-1", "bot_name": "sma"},
    "bot.error": {"bot_id": "k-1", "bot_name": "sma", "error": "5 failed ticks"},
    "bot.trade": {"bot_id": "k-1", "bot_name": "sma", "side": "buy", "size": 0.5, "price": 100.0},
    "account.password_changed": {"at": AT, "ip": "192.0.2.1", "via": "change"},
    "account.email_change_requested": {"new_email": "new@example.com"},
    "account.email_changed": {"new_email": "new@example.com"},
    "account.new_login": {"ip": "192.0.2.9", "user_agent": "curl/8", "at": AT},
    "account.export_ready": {"export_id": "e-1", "expires_at": AT},
    "account.deletion_scheduled": {"due_at": AT},
    "webhook.disabled": {"webhook_id": "w-1", "url": "https://hooks.example/x", "failures": 10},
    "leaderboard.placed": {
        "bot_id": "k-1",
        "bot_name": "sma",
        "generation_id": 7,
        "best_rank": 2,
        "top_n": 10,
        "boards": [{"period": "30d", "metric": "sharpe", "rank": 2}],
    },
    "bot.forked": {"bot_id": "k-1", "bot_name": "sma", "fork_id": "k-2", "by": "carol"},
    "bot.commented": {"bot_id": "k-1", "bot_name": "sma", "comment_id": "c-1", "by": "carol"},
    "comment.replied": {"bot_id": "k-1", "comment_id": "c-2", "parent_id": "c-1", "by": "dave"},
    "user.followed": {"by": "carol"},
    "mirror.paused": {
        "bot_id": "k-3",
        "bot_name": "mirror of sma",
        "source_bot_id": "k-1",
        "reason": "source_private",
    },
    "content.hidden": {
        "object_type": "comment",
        "object_id": "c-1",
        "bot_id": "k-1",
        "reason": "spam",
    },
}


def test_the_samples_cover_every_event() -> None:
    assert set(SAMPLES) == set(EVENTS) == set(EVENT_SUBJECTS)


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_event_renders_text_and_html(event: str) -> None:
    message = render_event(event, "ada@example.com", "ada", SAMPLES[event], FRONTEND)
    assert message.subject and "\n" not in message.subject
    assert message.text.startswith("Hello ada,") and "-- Botyard" in message.text
    assert "<p>Hello ada,</p>" in message.html
    assert f"{FRONTEND}/settings/notifications" in message.text
    for text in (message.text, message.html):
        assert "None" not in text and "Undefined" not in text


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_each_event_renders_with_no_data_at_all(event: str) -> None:
    # A caller that passed less than the template reads still gets an email out.
    message = render_event(event, "ada@example.com", "ada", {}, FRONTEND)
    assert message.text and message.html


def test_the_backtest_email_shows_the_headline_figures() -> None:
    message = render_event(
        "backtest.finished", "a@example.com", "ada", SAMPLES["backtest.finished"], FRONTEND
    )
    assert message.subject == "Backtest finished: sma on BTC-USD"
    assert "12.34%" in message.text and "-5.00%" in message.text and "1.50" in message.text
    assert f'href="{FRONTEND}/backtests/b-1"' in message.html


def test_html_is_escaped_and_subjects_stay_one_line() -> None:
    data = {"bot_id": "k", "bot_name": "<script>alert(1)</script>\r\nBcc: x@evil"}
    message = render_event("bot.error", "a@example.com", "<b>ada</b>", data, FRONTEND)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "&lt;b&gt;ada&lt;/b&gt;" in message.html
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "<script>" in message.text  # plain text is not HTML: shown as typed


def test_an_event_without_templates_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENTS, "made.up", EVENTS["bot.started"])
    monkeypatch.setitem(EVENT_SUBJECTS, "made.up", "Made up")
    with pytest.raises(TemplateNotFound):
        render_event("made.up", "a@example.com", "ada", {}, FRONTEND)


def test_the_digest_lists_its_items_escaped() -> None:
    at = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)
    items = [(at, "<i>sma</i> started trading"), (at, "sma stopped")]
    message = render_digest("a@example.com", "ada", items, FRONTEND)
    assert message.subject == "Your Botyard daily digest: 2 notifications"
    assert "- 2026-12-07 06:30 UTC: <i>sma</i> started trading" in message.text
    assert "&lt;i&gt;sma&lt;/i&gt; started trading" in message.html
