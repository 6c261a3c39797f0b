"""In a real browser: staff import contacts from a CSV (a background job whose progress the page shows)
and send an approved template to a customer whose 24-hour window closed, which reaches WhatsApp (the
stand-in) as `type: template`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory
from apps.campaigns.models import Template
from apps.conversations.models import Contact, Conversation
from apps.whatsapp.models import Channel
from tests.browser.conftest import SANDBOX_SECRET, screenshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CSV = "phone,name,tags,city\n+34 612 345 678,Ana,vip,Madrid\n612 345 679,Ben,,\n12345,Nadie,,\n"


def test_import_contacts_then_send_a_template_through_a_closed_window(stack, page, settings, tmp_path):
    base_url, standin = stack
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    workspace = Workspace.objects.create(slug="shop", name="Shop")
    channel = Channel.objects.create(
        workspace=workspace,
        kind=Channel.Kind.SANDBOX,
        phone_number_id="100200300",
        waba_id=standin.waba_id,
        access_token="sandbox-token",
        app_secret=SANDBOX_SECRET,
    )
    Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id=standin.waba_id,
        name="pedido_listo",
        language="es",
        category="UTILITY",
        status="APPROVED",
        components=[
            {"type": "BODY", "text": "Hola {{1}}, tu pedido está listo.", "example": {"body_text": [["Ana"]]}}
        ],
        variable_count=1,
    )
    user = UserFactory.create()
    MembershipFactory.create(user=user, workspace=workspace, role=Role.AGENT)
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/inbox/")

    # The import: queued, run by the worker, progress and row errors shown without a reload.
    csv_path = tmp_path / "clientes.csv"
    csv_path.write_text(CSV, encoding="utf-8")
    page.goto(f"{base_url}/contacts/import/")
    page.set_input_files("#id_file", str(csv_path))
    page.get_by_test_id("import-submit").click()
    row = page.get_by_test_id("import-row")
    expect(row).to_have_attribute("data-status", "done", timeout=60_000)
    expect(page.get_by_test_id("import-created")).to_have_text("2")
    expect(page.get_by_test_id("import-errors")).to_contain_text("1")
    ana = Contact.objects.get(workspace=workspace, wa_id="34612345678")
    assert (ana.name, ana.tags, ana.attributes) == ("Ana", ["vip"], {"city": "Madrid"})

    # Ana's window closed a day ago: the page offers the template, and it goes as one.
    conversation = Conversation.objects.create(
        workspace=workspace,
        channel=channel,
        contact=ana,
        last_inbound_at=timezone.now() - timedelta(hours=30),
    )
    page.goto(f"{base_url}/conversations/{conversation.pk}/")
    page.get_by_test_id("template-choice").select_option(label="pedido_listo (es, 1)")
    page.get_by_test_id("template-parameters").fill("Ana")
    page.get_by_test_id("template-send").click()

    def template_sent() -> list[dict]:
        """the template reached the stand-in"""
        return [sent for sent in standin.sent if sent["type"] == "template"]

    [sent] = wait_for(template_sent, timeout=60)
    assert sent["to"] == "34612345678"
    assert sent["content"] == {
        "name": "pedido_listo",
        "language": {"code": "es"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    }
    expect(page.locator("#thread")).to_contain_text("Hola Ana, tu pedido está listo.")


@pytest.fixture
def asgi_stack(worker, sandbox_standin, ws_server):
    """daphne serves HTTP and WebSockets on one port: the campaign page's funnel moves over the socket."""
    base_url = ws_server.replace("ws://", "http://")
    sandbox_standin.configure_webhooks(f"{base_url}/webhooks/whatsapp/", SANDBOX_SECRET)
    return base_url, sandbox_standin


def test_an_admin_builds_sends_pauses_and_resumes_a_campaign_and_nobody_gets_it_twice(
    asgi_stack, page, browser, settings
):
    """The issue's "done when" at the size of a browser test: built, previewed, sent through the worker's
    sender at the number's rate (1/s here, so the pause lands mid-send), paused and resumed from the
    page, the funnel right at the end, the opted-out customer skipped."""
    base_url, standin = asgi_stack
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    workspace = Workspace.objects.create(slug="sol", name="Tienda Sol")
    channel = Channel.objects.create(
        workspace=workspace,
        kind=Channel.Kind.SANDBOX,
        phone_number_id="100200301",
        waba_id=standin.waba_id,
        access_token="sandbox-token",
        app_secret=SANDBOX_SECRET,
        send_rate=1,
    )
    Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id=standin.waba_id,
        name="oferta",
        language="es",
        category="MARKETING",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hola {{1}}, hoy {{2}} de descuento."}],
        variable_count=2,
    )
    Contact.objects.create(workspace=workspace, wa_id="34611000009", name="Olga", opted_out=True)
    people = [
        Contact.objects.create(workspace=workspace, wa_id=f"3461100000{n}", name=f"Cliente {n}")
        for n in range(6)
    ]
    user = UserFactory.create()
    MembershipFactory.create(user=user, workspace=workspace, role=Role.ADMIN)
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/inbox/")

    page.goto(f"{base_url}/campaigns/")
    page.fill("#id_name", "Rebajas de invierno")
    page.select_option("#id_template", label="oferta (es, 2)")
    page.select_option("#id_var_1_source", "name")
    page.select_option("#id_var_2_source", "text")
    page.fill("#id_var_2_default", "un 20%")
    page.get_by_test_id("campaign-save").click()
    expect(page.get_by_test_id("campaign-preview")).to_contain_text(
        "Hola Cliente 0, hoy un 20% de descuento."
    )
    expect(page.get_by_test_id("campaign-preview")).to_contain_text("Olga: skipped (opted_out)")

    page.get_by_test_id("campaign-schedule").click()
    status = page.get_by_test_id("campaign-status")
    expect(status).to_have_attribute("data-status", "running")
    wait_for(lambda: len(standin.sent) >= 2, timeout=60)
    page.get_by_test_id("campaign-pause").click()
    expect(status).to_have_attribute("data-status", "paused")
    at_pause = len(standin.sent)
    screenshot(page, "campaign-paused.png")
    page.wait_for_timeout(2500)  # paused: nothing more leaves (at most the one the sender had claimed)
    assert len(standin.sent) <= at_pause + 1 < len(people)

    page.get_by_test_id("campaign-resume").click()
    # Within 20 s: the page's fallback poll is every 30 s, so only the WebSocket's events make it.
    expect(status).to_have_attribute("data-status", "completed", timeout=20_000)
    expect(page.get_by_test_id("funnel-sent")).to_have_text("6")
    expect(page.get_by_test_id("funnel-skipped")).to_have_text("1")
    sent_to = sorted(record["to"] for record in standin.sent if record["type"] == "template")
    assert sent_to == sorted(p.wa_id for p in people)  # each once; never the opted-out customer

    spanish = browser.new_context(locale="es-ES")
    try:
        other = spanish.new_page()
        other.goto(f"{base_url}/login/")
        other.fill("#id_username", user.username)
        other.fill("#id_password", PASSWORD)
        other.locator("[data-testid=login-submit]").click()
        other.wait_for_url("**/inbox/")
        other.goto(f"{base_url}/campaigns/")
        expect(other.locator("h1")).to_have_text("Campañas")
        expect(other.get_by_test_id("campaign-row")).to_contain_text("Completada")
    finally:
        spanish.close()
