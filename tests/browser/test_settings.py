"""The settings pages in a real browser, in English and Spanish, on a desktop and a phone: a profile section
saved on its own (and a bad value shown beside its field), the FAQ searched, a provider's test call to the
LLM stand-in and a WhatsApp number checked with the Graph stand-in."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from apps.assistant import providers
from apps.assistant.models import BusinessProfile
from apps.assistant.services import knowledge_create, profile_update
from apps.whatsapp.tests.factories import ChannelFactory
from tests.browser.conftest import screenshot
from tests.browser.test_sandbox import assert_no_horizontal_scroll

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TEXT = {
    "en": {
        "saved": "Identity saved.",
        "bad_range": "Write ranges as",
        "quality": "Medium",
        "ok": "answered in",
    },
    "es": {
        "saved": "Identidad: guardado.",
        "bad_range": "Escribe los horarios como",
        "quality": "Media",
        "ok": "respondió en",
    },
}


def _seed(graph_standin):
    workspace = WorkspaceFactory.create(timezone="Europe/Madrid")
    owner = UserFactory.create(username="olga")
    MembershipFactory.create(user=owner, workspace=workspace, role=Role.OWNER)
    profile_update(workspace_id=workspace.pk, tone="cercano", address="Calle Mayor 1")
    channel = ChannelFactory.create(workspace=workspace, name="Tienda Centro", access_token="browser-token")
    graph_standin.add_number(
        channel.phone_number_id, "browser-token", verified_name="Panadería Sol", quality_rating="YELLOW"
    )
    knowledge_create(workspace_id=workspace.pk, title="¿Tenéis parking?", content="Sí", language="es")
    knowledge_create(workspace_id=workspace.pk, title="Is there parking?", content="Yes", language="en")
    knowledge_create(workspace_id=workspace.pk, title="¿Wifi?", content="Sí", language="es")
    return workspace, owner


def _login(browser, base_url, user, viewport, language):
    context = browser.new_context(viewport=viewport, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    if language == "es":
        page.get_by_test_id("lang-es").click()
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/inbox/")
    return context, page


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_settings_pages_save_search_test_and_check(
    live_server, browser, cloud_settings, graph_standin, standin_providers, llm_standin, language, viewport
):
    workspace, owner = _seed(graph_standin)
    standin_providers(workspace.pk, ["openai_compatible"])
    # litellm's import (seconds, far more on a loaded machine) happens once per process, on the first
    # test call: done here, so the click below measures the page, not the import.
    providers.warm_up()
    text = TEXT[language]
    context, page = _login(browser, live_server.url, owner, viewport, language)
    try:
        # A section saves alone: the others keep what they had.
        page.goto(f"{live_server.url}/business/")
        expect(page.locator("html")).to_have_attribute("lang", language)
        if viewport == DESKTOP and language == "en":
            screenshot(page, "settings-business.png")
        identity = page.get_by_test_id("section-identity")
        identity.locator("#id_name").fill("Panadería Sol")
        identity.get_by_test_id("save-identity").click()
        expect(page.locator(".messages")).to_contain_text(text["saved"])
        profile = BusinessProfile.objects.get(workspace=workspace)
        assert (profile.name, profile.tone, profile.address) == ("Panadería Sol", "cercano", "Calle Mayor 1")
        assert_no_horizontal_scroll(page)

        hours = page.get_by_test_id("section-hours")
        hours.locator("#id_hours_mon").fill("9 a 14")
        hours.get_by_test_id("save-hours").click()
        monday = page.locator("p.field.has-error", has=page.locator("#id_hours_mon"))
        expect(monday.locator(".error")).to_contain_text(text["bad_range"])
        assert BusinessProfile.objects.get(workspace=workspace).opening_hours == {}

        # The FAQ, searched and filtered on the server.
        page.goto(f"{live_server.url}/business/knowledge/")
        filters = page.get_by_test_id("knowledge-filters")
        filters.locator("#id_q").fill("parking")
        filters.locator("#id_language").select_option("es")
        filters.get_by_test_id("knowledge-search").click()
        expect(page.get_by_test_id("knowledge-row")).to_have_count(1)
        expect(page.get_by_test_id("knowledge-row")).to_contain_text("¿Tenéis parking?")
        assert_no_horizontal_scroll(page)

        # A provider's line opens, and its test call reaches the LLM stand-in.
        page.goto(f"{live_server.url}/business/providers/")
        row = page.locator("[data-testid=provider-row][data-provider=openai_compatible]")
        if viewport == DESKTOP and language == "en":
            screenshot(page, "settings-providers.png")
        row.locator("summary").click()
        row.get_by_test_id("provider-test").click()
        expect(row.get_by_test_id("provider-test-ok")).to_contain_text(text["ok"], timeout=30_000)
        assert [r.model for r in llm_standin.chat_requests()] == ["openai_compatible-model"]
        assert_no_horizontal_scroll(page)

        # The number: the webhook URL to paste, and Meta's answer about it.
        page.goto(f"{live_server.url}/settings/numbers/")
        expect(page.get_by_test_id("webhook-url")).to_have_value(f"{live_server.url}/webhooks/whatsapp/")
        page.get_by_test_id("channel-check").click()
        result = page.get_by_test_id("channel-check-ok")
        expect(result).to_contain_text("Panadería Sol")
        expect(page.get_by_test_id("channel-quality")).to_have_text(text["quality"])
        assert_no_horizontal_scroll(page)
    finally:
        context.close()
