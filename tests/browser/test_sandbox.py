"""In a real browser: play a customer in the sandbox and watch the assistant answer with its ticks."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from apps.conversations.models import Message
from apps.sandbox.demo import demo_seed
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def log_in(page, base_url: str, username: str, next_path: str) -> None:
    # The dashboard's /login/ page is not there yet; the admin's login sets the same session.
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"**{next_path}")


def test_a_customer_writes_in_the_sandbox_and_sees_the_bots_reply_with_its_ticks(stack, page):
    base_url, standin = stack
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    user = UserFactory.create(is_staff=True)
    MembershipFactory.create(user=user, workspace=workspace, role=Role.OWNER)

    log_in(page, base_url, user.username, "/sandbox/")
    page.get_by_test_id("sandbox-name").fill("Lucía <script>")
    page.get_by_test_id("sandbox-number").fill("+34 600 111 222")
    page.get_by_test_id("sandbox-start").click()
    page.get_by_test_id("sandbox-input").fill("¿A qué hora abrís?")
    page.get_by_test_id("sandbox-send").click()

    mine = page.locator("[data-testid=sandbox-message][data-direction=in]")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("¿A qué hora abrís?")
    reply = page.locator("[data-testid=sandbox-message][data-direction=out]")
    expect(reply).to_have_count(1, timeout=60_000)
    expect(reply).to_contain_text("Abrimos de lunes a viernes")
    expect(reply.get_by_test_id("tick")).to_have_attribute("data-status", "read", timeout=30_000)
    expect(page.get_by_test_id("sandbox-customer")).to_contain_text(re.compile(r"Lucía <script>"))

    [sent] = standin.sent
    assert (sent["phone_number_id"], sent["to"]) == ("sandbox-1", "34600111222")
    inbound = Message.objects.get(direction="in")
    assert (inbound.from_wa_id, inbound.from_name, inbound.contact.wa_id) == (
        "34600111222",
        "Lucía <script>",
        "34600111222",
    )
    screenshot(page, "sandbox.png")
