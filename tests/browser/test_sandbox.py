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
    # The dashboard's login, where the sandbox sends a visitor who has no session.
    page.goto(f"{base_url}/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url(f"**{next_path}")


def demo_owner() -> str:
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    user = UserFactory.create(is_staff=True)
    MembershipFactory.create(user=user, workspace=workspace, role=Role.OWNER)
    return user.username


def tab_to(page, testid: str, key: str = "Tab") -> None:
    """Press `key` (Tab or Shift+Tab) until the element with `testid` has the focus."""
    for _ in range(30):
        page.keyboard.press(key)
        if page.evaluate("document.activeElement && document.activeElement.dataset.testid") == testid:
            return
    pytest.fail(f"{key} never reached {testid}")


def assert_no_horizontal_scroll(page) -> None:
    scroll_width, client_width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll_width <= client_width


def test_a_customer_writes_in_the_sandbox_and_sees_the_bots_reply_with_its_ticks(stack, page):
    base_url, standin = stack
    username = demo_owner()

    log_in(page, base_url, username, "/sandbox/")
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


def test_on_a_phone_the_keyboard_alone_starts_a_chat_sends_and_goes_back_to_the_list(stack, page):
    base_url, _ = stack
    username = demo_owner()
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, base_url, username, "/sandbox/")
    customers = page.get_by_test_id("sandbox-customers")
    thread = page.get_by_test_id("sandbox-thread")
    message_box = page.get_by_test_id("sandbox-input")
    expect(thread).to_be_hidden()
    assert_no_horizontal_scroll(page)

    # Start a chat: type the name, Tab to the number, Enter submits; a bad number is said beside it.
    tab_to(page, "sandbox-name")
    page.keyboard.type("María de los Ángeles Fernández-Villaverde")
    page.keyboard.press("Tab")
    page.keyboard.type("600 33")
    page.keyboard.press("Enter")
    number = page.get_by_test_id("sandbox-number")
    expect(page.get_by_test_id("sandbox-start-error")).to_have_text(
        "A phone number of 6 to 15 digits is needed."
    )
    expect(number).to_be_focused()
    expect(number).to_have_attribute("aria-invalid", "true")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("+34 600 333 444")
    page.keyboard.press("Enter")

    # The phone switches to the chat, with the focus in the message box; Enter sends.
    expect(message_box).to_be_focused()
    expect(customers).to_be_hidden()
    page.keyboard.type("¿A qué hora abrís?")
    page.keyboard.press("Enter")
    mine = page.locator("[data-testid=sandbox-message][data-direction=in]")
    expect(mine).to_have_count(1)
    expect(mine).to_contain_text("¿A qué hora abrís?")
    expect(message_box).to_have_value("")
    reply = page.locator("[data-testid=sandbox-message][data-direction=out]")
    expect(reply).to_have_count(1, timeout=60_000)
    expect(reply).to_contain_text("Abrimos de lunes a viernes")
    assert_no_horizontal_scroll(page)

    # Back to the list: the focus lands, visibly, on the customer being talked to.
    tab_to(page, "sandbox-back", key="Shift+Tab")
    page.keyboard.press("Enter")
    customer = page.get_by_test_id("sandbox-customer")
    expect(customer).to_have_count(1)
    expect(customer).to_be_focused()
    expect(customer).to_have_attribute("aria-current", "true")
    expect(customer).to_contain_text("+34600333444")
    assert customer.evaluate("node => getComputedStyle(node).outlineStyle") == "solid"
    expect(thread).to_be_hidden()
    assert_no_horizontal_scroll(page)

    # Space opens the same chat again, its thread kept.
    page.keyboard.press("Space")
    expect(message_box).to_be_focused()
    expect(page.get_by_test_id("sandbox-message")).to_have_count(2)
    expect(page.get_by_test_id("sandbox-customer-label")).to_contain_text("María de los Ángeles")
    assert_no_horizontal_scroll(page)
    assert Message.objects.filter(direction="in", from_wa_id="34600333444").count() == 1
