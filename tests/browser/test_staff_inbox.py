"""The three-pane inbox in a real browser, in English and Spanish, on a desktop and a phone: the list,
the open conversation at its newest message, and a second agent's take-over, assignment and note
arriving live, with the waiting counter in the navigation; canned replies and shortcuts. It refreshes
the README's inbox screenshots (desktop and phone)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from apps.conversations.models import CannedReply, Conversation, Message
from apps.conversations.services.status import Move, conversation_move
from apps.conversations.tests.factories import ContactFactory, ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TEXT = {
    "en": {"human": "A person answers", "assigned": "Assigned to {}", "waiting": "Waiting for a person"},
    "es": {
        "human": "Responde una persona",
        "assigned": "Asignada a {}",
        "waiting": "Esperando a una persona",
    },
}


def _seed():
    workspace = WorkspaceFactory.create(timezone="Europe/Madrid")
    channel = ChannelFactory.create(workspace=workspace, name="Tienda Centro")
    me = UserFactory.create(username="ana")
    teammate = UserFactory.create(username="bea")
    MembershipFactory.create(user=me, workspace=workspace, role=Role.OWNER)
    MembershipFactory.create(user=teammate, workspace=workspace, role=Role.AGENT)
    lucia = ConversationFactory.create(
        channel=channel,
        contact=ContactFactory.create(
            workspace=workspace, name="Lucía Pérez", wa_id="34600111222", tags=["VIP"]
        ),
        status=Conversation.Status.PENDING_HUMAN,
    )
    start = timezone.now() - timedelta(minutes=50)
    for n in range(30):  # enough to scroll: the page must open at the newest one
        row = MessageFactory.create(
            conversation=lucia,
            body=f"Mensaje {n}: ¿tenéis la talla 42 en azul?",
            **({} if n % 2 == 0 else {"direction": "out", "author": Message.Author.BOT, "wamid": ""}),
        )
        Message.objects.filter(pk=row.pk).update(created_at=start + timedelta(minutes=n))
    MessageFactory.create(conversation=lucia, body="¿Me atiende una persona, por favor?")
    pedro = ConversationFactory.create(
        channel=channel,
        contact=ContactFactory.create(workspace=workspace, name="Pedro Gómez", wa_id="34600333444"),
    )
    MessageFactory.create(conversation=pedro, body="¿Abrís el domingo?")
    CannedReply.objects.create(
        workspace=workspace, title="Horario", body="Hola {{first_name}}, abrimos de 9 a 18 h. Soy {{agent}}."
    )
    return workspace, me, teammate, lucia, pedro


# Headless Chromium has no notification centre: the page's Notification is recorded instead, with the
# permission the user would have granted.
NOTIFICATIONS = """
window.__notified = [];
window.Notification = function (title, options) { window.__notified.push(title); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


def _login(browser, base_url, user, viewport, language):
    context = browser.new_context(viewport=viewport, locale="en-US")
    context.set_default_timeout(20_000)
    context.add_init_script(NOTIFICATIONS)
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
def test_the_inbox_follows_a_second_agent_live(ws_server, browser, settings, language, viewport):
    base_url = ws_server.replace("ws://", "http://")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    workspace, me, teammate, lucia, pedro = _seed()
    text = TEXT[language]
    phone = viewport == PHONE
    mine, page = _login(browser, base_url, me, viewport, language)
    theirs, other = _login(browser, base_url, teammate, DESKTOP, language)

    # The list: who, their number, the number they wrote to, what they said last, who waits.
    expect(page.locator("html")).to_have_attribute("lang", language)
    rows = page.get_by_test_id("conversation-row")
    expect(rows).to_have_count(2)
    first = rows.filter(has_text="Lucía Pérez")
    expect(first).to_contain_text("+34600111222")
    expect(first).to_contain_text("Tienda Centro")
    expect(first.get_by_test_id("row-preview")).to_contain_text("¿Me atiende una persona")
    expect(first.get_by_test_id("row-status")).to_have_text(text["waiting"])
    expect(page.get_by_test_id("waiting-badge")).to_contain_text("1")
    page.get_by_test_id("notify-toggle").click()
    expect(page.get_by_test_id("notify-toggle")).to_have_attribute("aria-pressed", "true")

    # Opening it: beside the list on a desktop, alone on a phone; at its newest message.
    first.locator("a").click()
    thread = page.locator("#thread")
    expect(page.get_by_test_id("conversation-status")).to_have_attribute("data-status", "pending_human")
    expect(page.get_by_test_id("message").last).to_contain_text("¿Me atiende una persona")
    expect(page.get_by_test_id("conversation-list")).to_be_visible(visible=not phone)
    at_bottom = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 4"
    page.wait_for_function(f"() => ({at_bottom})(document.getElementById('thread'))")
    assert thread.evaluate("el => el.scrollHeight > el.clientHeight")  # there was something to scroll

    # A teammate takes it over, gives it to me and leaves a note: my page follows without a reload.
    other.goto(f"{base_url}/conversations/{lucia.pk}/")
    other.get_by_test_id("takeover").click()
    expect(page.get_by_test_id("conversation-status")).to_have_attribute("data-status", "human")
    expect(page.get_by_test_id("conversation-status")).to_have_text(text["human"])
    expect(page.get_by_test_id("waiting-badge")).to_have_count(0)
    other.get_by_test_id("assign-choice").select_option(label="ana")
    other.get_by_test_id("assign").click()
    expect(page.get_by_test_id("conversation-assignee")).to_have_text(text["assigned"].format("ana"))
    other.get_by_test_id("note-open").click()
    other.get_by_test_id("note-input").fill("Clienta VIP: ofrecer envío gratis")
    other.get_by_test_id("note-send").click()
    expect(page.get_by_test_id("note")).to_contain_text("Clienta VIP")
    assert not Message.objects.filter(body__contains="Clienta VIP").exists()

    # A canned reply, filled in for Lucía and me, sent with Ctrl+Enter: a staff bubble of its own.
    page.get_by_test_id("canned-search").fill("horario")
    page.get_by_test_id("canned-pick").first.click()
    expect(page.get_by_test_id("reply-input")).to_have_value("Hola Lucía, abrimos de 9 a 18 h. Soy ana.")
    page.get_by_test_id("reply-input").press("Control+Enter")
    staff = page.locator("[data-testid=message][data-author=agent]")
    expect(staff).to_have_count(1)
    expect(staff).to_contain_text("abrimos de 9 a 18")
    page.wait_for_function(f"() => ({at_bottom})(document.getElementById('thread'))")

    # Another customer starts waiting: the counter in the navigation says so, live.
    conversation_move(conversation=pedro, move=Move.CUSTOMER_HANDOFF)
    expect(page.get_by_test_id("waiting-badge")).to_contain_text("1")
    notified = {"en": "A customer is waiting for a person", "es": "Un cliente espera a una persona"}
    page.wait_for_function("() => window.__notified.length === 1")
    assert page.evaluate("window.__notified") == [notified[language]]

    if phone:
        page.get_by_role("link", name={"en": "Customer details", "es": "Datos del cliente"}[language]).click()
        expect(page.get_by_test_id("contact-pane")).to_be_visible()
        expect(page.locator("#thread")).to_be_hidden()
        expect(page.get_by_test_id("customer-tags")).to_contain_text("VIP")
        page.get_by_test_id("contact-pane").get_by_role("link").first.click()
        expect(page.locator("#thread")).to_be_visible()
        page.get_by_test_id("back-to-list").click()
        expect(page.get_by_test_id("conversation-list")).to_be_visible()
        if language == "en":
            screenshot(page, "inbox-phone-list.png")
            page.get_by_test_id("conversation-row").filter(has_text="Lucía").locator("a").click()
            expect(page.get_by_test_id("note")).to_be_visible()
            screenshot(page, "inbox-phone.png")
    else:
        expect(page.get_by_test_id("contact-pane")).to_contain_text("34600111222")
        # Keyboard: "/" goes to the search, "j" opens the next conversation.
        page.locator("body").press("Escape")
        page.keyboard.press("/")
        expect(page.get_by_test_id("inbox-search")).to_be_focused()
        page.keyboard.press("Escape")
        if language == "en":
            screenshot(page, "inbox-desktop.png")
        page.keyboard.press("j")
        page.wait_for_url(f"**/conversations/{pedro.pk}/**")
    mine.close()
    theirs.close()
