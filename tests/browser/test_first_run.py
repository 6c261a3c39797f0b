"""In a real browser, what a newcomer opens first loads clean: the API docs under our CSP, the icon."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_and_the_favicon_load_without_a_console_error(live_server, browser):
    """Swagger UI from our own static files under the CSP; the browser's /favicon.ico finds the icon."""
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

        page.goto(f"{live_server.url}/api/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_be_visible(timeout=20_000)
        icon = page.request.get(f"{live_server.url}/favicon.ico")

        assert problems == []
        assert icon.status == 200 and "svg" in icon.headers["content-type"]
    finally:
        context.close()
