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
