"""The campaigns pages: template list with preview, the segment builder's live count, the template send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from apps.campaigns.models import Segment, Template
from apps.conversations.models import Message
from apps.conversations.tests.factories import ContactFactory, ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


def _client(workspace, role: str) -> Client:
    client = Client()
    client.force_login(MembershipFactory.create(workspace=workspace, role=role).user)
    return client


def test_the_template_list_shows_status_quality_and_a_preview_with_the_examples(workspace):
    Template.objects.create(
        workspace=workspace,
        waba_id="1",
        name="pedido_listo",
        language="es",
        category="UTILITY",
        status="APPROVED",
        quality="YELLOW",
        components=[{"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Ana"]]}}],
        variable_count=1,
    )

    page = _client(workspace, Role.AGENT).get("/templates/").content.decode()

    assert "pedido_listo" in page and "Approved" in page and "Medium" in page
    assert 'data-testid="template-preview">Hola Ana<' in page


def test_the_segment_builder_counts_live_and_only_admins_save(workspace):
    ContactFactory.create(workspace=workspace, tags=["vip"])
    ContactFactory.create(workspace=workspace, tags=["vip"], opted_out=True)
    ContactFactory.create(workspace=workspace, tags=[])
    agent, admin = _client(workspace, Role.AGENT), _client(workspace, Role.ADMIN)

    counted = agent.post("/segments/count/", {"tags_any": "vip"})
    refused = agent.post("/segments/", {"name": "VIP", "tags_any": "vip"})
    saved = admin.post("/segments/", {"name": "VIP", "tags_any": "vip, madrid"})

    assert counted.content.decode().strip() == "2 (1 receive marketing)"
    assert refused.status_code == 403
    assert saved.status_code == 302
    assert list(Segment.objects.values_list("name", "filters")) == [("VIP", {"tags_any": ["vip", "madrid"]})]


def test_a_template_is_sent_from_the_conversation_page_through_a_closed_window(workspace):
    channel = ChannelFactory.create(workspace=workspace, waba_id="1")
    conversation = ConversationFactory.create(
        channel=channel, last_inbound_at=timezone.now() - timedelta(days=2)
    )
    template = Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id="1",
        name="aviso",
        language="es",
        category="UTILITY",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Ana"]]}}],
        variable_count=1,
    )
    client = _client(workspace, Role.AGENT)

    shown = client.get(f"/conversations/{conversation.pk}/").content.decode()
    sent = client.post(
        f"/conversations/{conversation.pk}/template/", {"template": template.pk, "parameters": "Eva"}
    )

    assert 'data-testid="template-send"' in shown
    assert sent.status_code == 302
    assert list(Message.objects.filter(direction="out").values_list("type", "body")) == [
        ("template", "Hola Eva")
    ]


# --- campaigns ------------------------------------------------------------------------------------
def test_an_admin_builds_a_campaign_previews_it_sends_it_pauses_and_downloads_its_recipients(
    workspace, waba_channel, django_capture_on_commit_callbacks
):
    from apps.campaigns.models import Campaign
    from apps.campaigns.services import runner

    template = Template.objects.create(
        workspace=workspace,
        channel=waba_channel,
        waba_id=waba_channel.waba_id,
        name="oferta",
        language="es",
        category="MARKETING",
        status="APPROVED",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Para {{1}}"},
            {"type": "BODY", "text": "Hola {{1}}, {{2}} de descuento."},
            {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Cupón", "url": "https://t.es/c/{{1}}"}]},
        ],
        variable_count=2,
    )
    ContactFactory.create(workspace=workspace, wa_id="34600000001", name="Ana", attributes={"offer": "20%"})
    ContactFactory.create(workspace=workspace, wa_id="34600000002", name="=HYPERLINK(x)")
    ContactFactory.create(workspace=workspace, wa_id="34600000003", name="Olga", opted_out=True)
    admin = _client(workspace, Role.ADMIN)

    built = admin.post(
        "/campaigns/",
        {
            "name": "Rebajas",
            "template": template.pk,
            "channel": waba_channel.pk,
            "segment": "",
            "var_1_source": "name",
            "var_2_source": "attribute",
            "var_2_key": "offer",
            "var_2_default": "10%",
            "hvar_1_source": "text",
            "hvar_1_default": "socios",
            "bvar_1_source": "wa_id",
        },
    )
    campaign = Campaign.objects.get(workspace=workspace)
    assert built.status_code == 302 and built["Location"] == f"/campaigns/{campaign.pk}/"
    assert campaign.header_variables == [{"source": "text", "key": "", "default": "socios"}]
    assert campaign.button_variables == [{"source": "wa_id", "key": "", "default": ""}]
    page = admin.get(built["Location"]).content.decode()
    assert "Para socios\n\nHola Ana, 20% de descuento." in page and "opted_out" in page

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(f"/campaigns/{campaign.pk}/schedule/", {"scheduled_at": ""})
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    runner.campaign_step(campaign_id=campaign.pk, token=campaign.feed_token)
    live = admin.get(f"/campaigns/{campaign.pk}/live/").content.decode()
    assert 'data-testid="funnel-total">3<' in live and 'data-testid="funnel-skipped">1<' in live

    ana = Message.objects.get(author="campaign", contact__name="Ana")
    thread = admin.get(f"/conversations/{ana.conversation_id}/").content.decode()
    assert 'data-testid="conversation-campaign"' in thread and "Rebajas" in thread  # a reply is seen as one

    admin.post(f"/campaigns/{campaign.pk}/pause/")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    refused = admin.post(f"/campaigns/{campaign.pk}/pause/", follow=True).content.decode()
    assert "is not running" in refused

    csv_text = b"".join(admin.get(f"/campaigns/{campaign.pk}/recipients.csv").streaming_content).decode()
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("contact_id,name,wa_id,state")
    assert any("'=HYPERLINK(x)" in line for line in lines)  # never a formula in a spreadsheet
    assert len(lines) == 4


def test_a_scheduled_time_is_the_workspaces_wall_clock(workspace, waba_channel):
    from apps.accounts.models import Workspace
    from apps.campaigns.models import Campaign

    Workspace.objects.filter(pk=workspace.pk).update(timezone="America/Mexico_City")
    campaign = _notice_campaign(workspace, waba_channel)

    _client(workspace, Role.ADMIN).post(
        f"/campaigns/{campaign.pk}/schedule/", {"scheduled_at": "2031-01-10T09:30"}
    )

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.scheduled_at.isoformat() == "2031-01-10T15:30:00+00:00"  # UTC-6


@pytest.fixture
def waba_channel(workspace, cloud_settings):
    return ChannelFactory.create(
        workspace=workspace, waba_id="102290129340398", access_token="EAAG-token-0123"
    )


def test_an_admin_makes_a_campaign_repeat_every_monday(workspace, waba_channel):
    from django_celery_beat.models import PeriodicTask

    from apps.campaigns.models import Campaign

    campaign = _notice_campaign(workspace, waba_channel)
    admin = _client(workspace, Role.ADMIN)

    admin.post(f"/campaigns/{campaign.pk}/schedule/", {"scheduled_at": "", "recurrence": "0 9 * * 1"})

    campaign.refresh_from_db()
    assert (campaign.status, campaign.recurrence) == (Campaign.Status.SCHEDULED, "0 9 * * 1")
    assert PeriodicTask.objects.filter(task="campaigns.campaign_recur").count() == 1
    assert 'data-testid="campaign-recurrence"' in admin.get(f"/campaigns/{campaign.pk}/").content.decode()


def _notice_campaign(workspace, channel):
    """A draft of an approved utility template without variables."""
    from apps.campaigns.models import Campaign

    template = Template.objects.create(
        workspace=workspace,
        channel=channel,
        waba_id=channel.waba_id,
        name="aviso",
        language="es",
        category="UTILITY",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Hola"}],
        variable_count=0,
    )
    return Campaign.objects.create(workspace=workspace, name="Aviso", template=template, channel=channel)


def test_the_builder_stores_a_pasted_media_link_as_an_ascii_uri(workspace, waba_channel):
    from apps.campaigns.models import Campaign

    template = _notice_campaign(workspace, waba_channel).template
    admin = _client(workspace, Role.ADMIN)
    fields = {"template": template.pk, "channel": waba_channel.pk, "segment": ""}

    admin.post("/campaigns/", {**fields, "name": "Foto", "header_media_url": "https://tiénda.es/fóto.jpg"})
    refused = admin.post(
        "/campaigns/", {**fields, "name": "Mal", "header_media_url": "http://tienda.es/a.jpg"}
    )

    assert Campaign.objects.get(name="Foto").header_media_url == "https://xn--tinda-csa.es/f%C3%B3to.jpg"
    assert refused.status_code == 200 and "header_media_url" in refused.context["form"].errors
    assert not Campaign.objects.filter(name="Mal").exists()
