"""In Chromium, a page on an allowed origin uses the API and its stream; elsewhere it can't.

The page (tests/browser/site/cors.js) logs in, creates and lists bots, backtests one and
polls it to the end, reads candles with an ETag round trip, and follows the market
stream; it writes what it saw to ``window.report``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import orjson
from playwright.sync_api import Browser, Page
from redis import Redis

from models.market.cache import stream_key
from tests.browser.conftest import Stack
from tests.helpers import PASSWORD, REDIS_URL
from tests.workers.processes import BOT, END, SPAN_START

DAY = 24 * 3_600_000
START = SPAN_START - 2 * DAY  # the world's first stored candle
WAIT_MS = 90_000


def page_url(origin: str, stack: Stack, bot_name: str) -> str:
    query = {
        "api": stack.api,
        "streams": stack.streams,
        "login": "owner",
        "password": PASSWORD,
        "symbol": "BTC-USD",
        "start": str(START),
        "end": str(END),
        "bot": json.dumps({**BOT, "name": bot_name}),
    }
    return f"{origin}/cors.html?{urlencode(query)}"


def publish_quote(price: float) -> dict[str, Any]:
    """A quote entry on BTC-USD's stream, written the way workers/feed.py writes it."""
    ts = int(time.time() * 1000)
    body = {"symbol": "BTC-USD", "price": price, "ts": ts}
    redis = Redis.from_url(REDIS_URL or "")
    redis.xadd(stream_key("BTC-USD"), {"type": "quote", "data": orjson.dumps(body)}, id=f"{ts}-1")
    redis.close()
    return body


def report_of(page: Page) -> dict[str, Any]:
    report: dict[str, Any] = page.evaluate("window.report")
    return report


def test_a_page_on_the_allowed_origin_uses_the_api_and_the_stream(
    browser: Browser, stack: Stack
) -> None:
    page = browser.new_page()
    try:
        page.goto(page_url(stack.page_origin, stack, "from-the-browser"))
        page.wait_for_function(
            "window.report.stream.open || window.report.stream.errors > 0", timeout=WAIT_MS
        )
        assert report_of(page)["stream"] == {"open": True, "errors": 0, "events": []}
        quote = publish_quote(43210.5)
        page.wait_for_function(
            "window.report.done && window.report.stream.events.length > 0", timeout=WAIT_MS
        )
        report = report_of(page)
    finally:
        page.close()

    assert report["error"] is None, (report, stack.procs.logs())
    # Exposed headers are readable from the script: the request id and the rate-limit budget.
    assert report["login"]["status"] == 200
    assert re.fullmatch(r"[0-9a-f]{32}", report["login"]["requestId"])
    assert int(report["login"]["rateLimitRemaining"]) > 0
    assert report["created"]["status"] == 201
    assert report["bots"] == {"status": 200, "total": 1, "names": ["from-the-browser"]}

    # The backtest was followed through its Location header until the worker finished it.
    backtest = report["backtest"]
    assert backtest["status"] == 202
    assert backtest["location"] == f"/api/v1/backtests/{backtest['id']}"
    assert backtest["final"] == "succeeded"
    server = stack.call("GET", backtest["location"], token=stack.token())
    assert server["status"] == "succeeded"
    assert backtest["bars"] == server["bars"] == 6 * 24
    assert backtest["trades"] == server["metrics"]["trades"]
    assert backtest["final_equity"] == server["metrics"]["final_equity"]

    # ETag is readable and If-None-Match is an allowed request header.
    candles = report["candles"]
    assert (candles["status"], candles["rows"], candles["conditional"]) == (200, 6 * 24, 304)
    assert candles["etag"]

    # The stream delivered the quote the feed's way of publishing put on it.
    events = report["stream"]["events"]
    assert [e["data"] for e in events] == [quote]
    assert events[0]["type"] == "quote"
    assert f"BTC-USD={quote['ts']}-1" in events[0]["id"]
    assert report["stream"]["errors"] == 0


def test_the_same_page_from_another_origin_is_refused(browser: Browser, stack: Stack) -> None:
    token = stack.token()
    bots_before = stack.call("GET", "/api/v1/bots", token=token)["total"]
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "CORS policy" in m.text else None)
    try:
        page.goto(page_url(stack.other_origin, stack, "from-a-stranger"))
        page.wait_for_function(
            "window.report.done && window.report.stream.readyState === 2", timeout=WAIT_MS
        )
        report = report_of(page)
    finally:
        page.close()

    # fetch rejects with a TypeError: the preflight of the login got no Allow-Origin.
    assert report["error"]["name"] == "TypeError", report
    assert "login" not in report
    # The EventSource failed for good instead of opening.
    assert report["stream"]["open"] is False
    assert report["stream"]["errors"] >= 1
    assert report["stream"]["events"] == []
    # Chromium says why, and nothing reached the API's data.
    assert any(stack.other_origin in text for text in blocked), blocked
    assert stack.call("GET", "/api/v1/bots", token=token)["total"] == bots_before
