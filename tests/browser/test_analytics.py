"""In a real browser: a supervisor opens Analytics, sees the demo-like figures and the SVG charts drawn
under the Content-Security-Policy (no violation reported), narrows the range, switches to Spanish and
downloads a table as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from apps.conversations.models import Conversation, Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
RANGE = "start=2026-01-01&end=2026-01-14"


def _history(workspace: Workspace) -> None:
    """Two weeks of a small shop: customers write in the evening, the bot answers within seconds."""
    channel = ChannelFactory.create(workspace=workspace, name="Tienda")
    start = datetime(2026, 1, 1, 18, tzinfo=UTC)
    for day in range(14):
        opened = start + timedelta(days=day)
        conversation = ConversationFactory.create(channel=channel)
        Conversation.objects.filter(pk=conversation.pk).update(created_at=opened)
        for n in range(day % 4 + 1):
            at = opened + timedelta(minutes=n * 7)
            asked = MessageFactory.create(conversation=conversation)
            answered = MessageFactory.create(
                conversation=conversation,
                direction="out",
                author="bot",
                status="read" if n % 2 else "delivered",
            )
            Message.objects.filter(pk=asked.pk).update(created_at=at)
            Message.objects.filter(pk=answered.pk).update(created_at=at + timedelta(seconds=3 + n))


def test_a_supervisor_reads_the_analytics_page_with_charts_in_english_and_spanish(
    live_server, page, settings
):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    workspace = Workspace.objects.create(slug="shop", name="Shop", timezone="Europe/Madrid")
    _history(workspace)
    user = UserFactory.create()
    MembershipFactory.create(user=user, workspace=workspace, role=Role.SUPERVISOR)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security" in message.text else None,
    )
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/inbox/")

    page.get_by_role("link", name="Analytics").click()
    page.wait_for_url("**/analytics/")
    page.fill("#id_start", "2026-01-01")
    page.fill("#id_end", "2026-01-14")
    page.get_by_test_id("analytics-apply").click()
    page.wait_for_url(f"**/analytics/?{RANGE}*")

    expect(page.get_by_test_id("tile-inbound")).to_have_text("33")
    expect(page.get_by_test_id("tile-outbound")).to_have_text("33")
    expect(page.get_by_test_id("tile-bot-alone")).to_have_text("100.0 %")
    expect(page.get_by_test_id("chart")).to_have_count(5)
    bars = page.locator("[data-testid=chart] rect.in")
    expect(bars.first).to_be_visible()
    assert bars.first.bounding_box()["height"] > 0  # drawn, not refused by the CSP
    expect(page.locator("[data-measure=bot_first_response] td").nth(1)).to_have_text("3 s")
    screenshot(page, "analytics.png")

    with page.expect_download() as download:
        page.get_by_test_id("export-messages_by_day").click()
    lines = download.value.path().read_text().splitlines()
    assert lines[0] == "day,inbound,outbound" and lines[1] == "2026-01-01,1,1" and len(lines) == 15

    page.get_by_test_id("lang-es").click()
    expect(page.get_by_role("heading", name="Analítica")).to_be_visible()
    expect(page.get_by_text("Mensajes por día").first).to_be_visible()
    expect(page.get_by_test_id("tile-inbound")).to_have_text("33")
    assert violations == []
