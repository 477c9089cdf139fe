"""/api/docs renders in Chromium with all off-machine requests blocked and lists every operation."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Route

from tests.browser.conftest import LOOPBACK_HOSTS, Stack

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


def test_the_interactive_docs_render_offline_and_list_every_operation(
    browser: Browser, stack: Stack
) -> None:
    spec = stack.call("GET", "/api/openapi.json")
    expected = sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    )
    context = browser.new_context()
    blocked: list[str] = []
    requested: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if urlsplit(url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    try:
        page.goto(stack.api + "/api/docs")
        page.wait_for_function(
            "(n) => document.querySelectorAll('.opblock-summary-path').length >= n",
            arg=len(expected),
            timeout=60_000,
        )
        listed = page.evaluate(
            """() => Array.from(document.querySelectorAll('.opblock')).map((op) => [
                op.querySelector('.opblock-summary-method').textContent,
                op.querySelector('.opblock-summary-path').dataset.path,
            ])"""
        )
        title = page.text_content(".info .title")
        backtests = page.text_content(
            ".opblock-post:has(.opblock-summary-path[data-path='/api/v1/backtests'])"
        )
    finally:
        context.close()

    assert sorted(tuple(op) for op in listed) == expected
    assert title is not None and spec["info"]["title"] in title
    summary = spec["paths"]["/api/v1/backtests"]["post"]["summary"]
    assert backtests is not None and summary in backtests
    assert blocked == []
    origin = stack.api + "/"
    assert requested and all(url.startswith(origin) for url in requested), requested
    assert any("/api/docs/assets/swagger-ui-4.15.5/swagger-ui-bundle.js" in u for u in requested)
