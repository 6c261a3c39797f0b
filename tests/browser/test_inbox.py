"""In a real browser: the staff inbox updates live, an agent takes over and replies, the customer
sees it in the sandbox, and the UI switches to Spanish. Pages and WebSockets both come from daphne."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from apps.conversations.models import Conversation, Message
from apps.sandbox.demo import SANDBOX_PHONE_NUMBER_ID, demo_seed
from tests.browser.conftest import SANDBOX_SECRET, screenshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def asgi_stack(worker, sandbox_standin, ws_server):
    """daphne serves HTTP and WebSockets on one port; the stand-in posts its webhooks there."""
    base_url = ws_server.replace("ws://", "http://")
    sandbox_standin.configure_webhooks(f"{base_url}/webhooks/whatsapp/", SANDBOX_SECRET)
    return base_url, sandbox_standin


def test_inbox_live_takeover_agent_reply_reaches_the_sandbox_and_spanish_ui(asgi_stack, browser, settings):
    base_url, standin = asgi_stack
    workspace = Workspace.objects.create(slug="default", name="Default")
    demo_seed(workspace=workspace)
    # daphne runs the project's settings, which do not know the suite's fast test hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    user = UserFactory.create(is_staff=True)
    MembershipFactory.create(user=user, workspace=workspace, role=Role.OWNER)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(20_000)
    staff, customer = context.new_page(), context.new_page()
    frames: list[str] = []  # what reaches the staff page over its WebSocket
    staff.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))

    # Staff logs in and watches the inbox.
    staff.goto(f"{base_url}/login/")
    staff.fill("#id_username", user.username)
    staff.fill("#id_password", PASSWORD)
    staff.get_by_test_id("login-submit").click()
    staff.wait_for_url("**/inbox/")
    expect(staff.get_by_test_id("conversation-row")).to_have_count(0)

    # A customer writes from the sandbox; the conversation appears in the inbox without a reload.
    customer.goto(f"{base_url}/sandbox/")
    customer.get_by_test_id("sandbox-name").fill("Marisa")
    customer.get_by_test_id("sandbox-number").fill("34600222333")
    customer.get_by_test_id("sandbox-start").click()
    customer.get_by_test_id("sandbox-input").fill("Necesito ayuda con un pedido especial")
    customer.get_by_test_id("sandbox-send").click()
    row = staff.get_by_test_id("conversation-row")
    expect(row).to_have_count(1, timeout=60_000)
    expect(row).to_contain_text("Marisa")
    # It came over the WebSocket (not the page's 5 s fallback poll): the event for this conversation.
    conversation_id = Conversation.objects.get(contact__wa_id="34600222333").pk
    assert any(f'"conversation_id": {conversation_id}' in frame for frame in frames), frames[:5]

    # The agent opens it, takes over and replies; the reply reaches the customer's sandbox.
    row.first.click()
    staff.get_by_test_id("takeover").click()
    expect(staff.get_by_test_id("handback")).to_be_visible()
    staff.get_by_test_id("reply-input").fill("Hola Marisa, soy Marta. Te ayudo ahora mismo.")
    staff.get_by_test_id("reply-send").click()
    agent_reply = customer.locator("[data-testid=sandbox-message][data-direction=out]", has_text="soy Marta")
    expect(agent_reply).to_have_count(1, timeout=60_000)
    conversation = Conversation.objects.get(contact__wa_id="34600222333")
    assert conversation.status == Conversation.Status.HUMAN and conversation.assignee == user
    # The sandbox shows the reply once Meta's stand-in accepted it; the sender records the send a few
    # milliseconds later (its recorder batches writes), so wait for the row rather than race it.
    sent = Message.objects.filter(conversation=conversation, author="agent", send_state="sent")
    wait_for(lambda: sent.exists(), timeout=30)
    assert sent.count() == 1
    thread = staff.locator("[data-testid=message][data-direction=out]", has_text="soy Marta")
    expect(thread).to_have_count(1)

    # The customer reacts to that reply: the emoji appears on it while the page is open (no bubble of
    # its own), and goes away when the customer removes it.
    bubbles = staff.get_by_test_id("message").count()
    reply_wamid = sent.get().wamid
    delivered = standin.inject_reaction(SANDBOX_PHONE_NUMBER_ID, "34600222333", reply_wamid, "👍")
    assert delivered.status_code == 200, delivered
    expect(thread.get_by_test_id("reaction")).to_have_text("👍", timeout=30_000)
    expect(staff.get_by_test_id("message")).to_have_count(bubbles)
    standin.inject_reaction(SANDBOX_PHONE_NUMBER_ID, "34600222333", reply_wamid, "")
    expect(thread.get_by_test_id("reaction")).to_have_count(0, timeout=30_000)
    expect(staff.get_by_test_id("message")).to_have_count(bubbles)

    # The UI switches to Spanish.
    staff.get_by_test_id("lang-es").click()
    expect(staff.locator("html")).to_have_attribute("lang", "es")
    expect(staff.get_by_test_id("logout")).to_contain_text("Cerrar sesión")
    staff.goto(f"{base_url}/inbox/")
    expect(staff.get_by_text("Bandeja de entrada").first).to_be_visible()
    screenshot(staff, "inbox.png")
    context.close()
