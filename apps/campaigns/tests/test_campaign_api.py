"""The campaigns API as an admin's screen uses it: build, preview, schedule in the workspace's time
zone, pause, resume, read the funnel and the recipients; another workspace's objects are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import TestCase

from apps.accounts.models import Role, Workspace
from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns.models import Campaign, Template
from apps.campaigns.services import runner
from apps.campaigns.tests.conftest import WABA
from apps.campaigns.tests.test_runner import NAME_AND_OFFER, contacts
from apps.conversations.models import Message

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]


def build(client, waba_channel, template, **fields) -> dict:
    body = {
        "name": "Rebajas",
        "template": template.pk,
        "channel": waba_channel.pk,
        "audience_filters": {"tags_any": ["vip"]},
        "variables": NAME_AND_OFFER,
        **fields,
    }
    response = client.post("/api/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_admin_builds_previews_and_starts_a_campaign_and_reads_its_funnel(
    member_client, waba_channel, template
):
    client, _ = member_client(Role.ADMIN)
    contacts(waba_channel.workspace, 2, tags=["vip"], attributes={"offer": "15%"})
    contacts(waba_channel.workspace, 1, start=10, tags=["vip"], opted_out=True)
    contacts(waba_channel.workspace, 3, start=20)  # not in the audience
    campaign = build(client, waba_channel, template)

    preview = client.get(f"/api/campaigns/{campaign['id']}/preview").json()
    assert [p["text"] for p in preview[:2]] == ["Hola Cliente 0, 15% de descuento."] * 1 + [
        "Hola Cliente 1, 15% de descuento."
    ]
    assert preview[2]["skip_reason"] == "opted_out" and preview[2]["text"] == ""

    with TestCase.captureOnCommitCallbacks(execute=True):
        started = client.post(f"/api/campaigns/{campaign['id']}/schedule", {}, format="json")
    assert started.status_code == 200 and started.json()["status"] == "running"
    row = Campaign.objects.get(pk=campaign["id"])
    runner.campaign_step(campaign_id=row.pk, token=row.feed_token)

    funnel = client.get(f"/api/campaigns/{campaign['id']}/funnel").json()
    assert (funnel["total"], funnel["queued"], funnel["skipped"]) == (3, 2, 1)
    queued = client.get(f"/api/campaigns/{campaign['id']}/recipients/?stage=in_queue").json()
    assert sorted(r["contact_name"] for r in queued["results"]) == ["Cliente 0", "Cliente 1"]
    assert all(r["parameters"][1] == "15%" and r["message_status"] == "queued" for r in queued["results"])

    paused = client.post(f"/api/campaigns/{campaign['id']}/pause", format="json")
    assert paused.status_code == 200 and paused.json()["paused_reason"] == "staff"
    assert not Message.objects.filter(author="campaign", send_state="pending").exists()
    again = client.post(f"/api/campaigns/{campaign['id']}/pause", format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "illegal_transition"
    resumed = client.post(f"/api/campaigns/{campaign['id']}/resume", format="json")
    assert resumed.json()["status"] == "running"
    cancelled = client.post(f"/api/campaigns/{campaign['id']}/cancel", format="json")
    assert cancelled.json()["status"] == "cancelled"
    assert client.get(f"/api/campaigns/{campaign['id']}/funnel").json()["cancelled"] == 2


def test_a_time_without_offset_is_the_workspaces_and_a_skipped_hour_is_a_400(
    member_client, waba_channel, template
):
    Workspace.objects.filter(pk=waba_channel.workspace_id).update(timezone="Europe/Madrid")
    client, _ = member_client(Role.ADMIN)
    campaign = build(client, waba_channel, template)

    skipped = client.post(
        f"/api/campaigns/{campaign['id']}/schedule", {"scheduled_at": "2030-03-31T02:30:00"}, format="json"
    )
    scheduled = client.post(
        f"/api/campaigns/{campaign['id']}/schedule", {"scheduled_at": "2030-03-31T10:00:00"}, format="json"
    )

    assert skipped.status_code == 400 and "does not exist" in skipped.json()["error"]["message"]
    assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled"
    at = datetime.fromisoformat(scheduled.json()["scheduled_at"]).astimezone(UTC)
    assert (at.hour, at.minute) == (8, 0)  # 10:00 summer time in Madrid
    assert client.patch(f"/api/campaigns/{campaign['id']}/", {"name": "x"}, format="json").status_code == 409
    assert (
        client.post(f"/api/campaigns/{campaign['id']}/unschedule", format="json").json()["status"] == "draft"
    )
    assert client.delete(f"/api/campaigns/{campaign['id']}/").status_code == 204


def test_another_workspaces_template_channel_or_segment_is_a_bad_field(member_client, waba_channel, template):
    client, _ = member_client(Role.ADMIN)
    other = WorkspaceFactory.create()
    theirs = Template.objects.create(
        workspace=other, waba_id=WABA, name="suya", language="es", category="UTILITY", status="APPROVED"
    )

    response = client.post("/api/campaigns/", {"name": "x", "template": theirs.pk}, format="json")
    bad_variables = client.post(
        "/api/campaigns/", {"name": "x", "variables": [{"source": "attribute"}]}, format="json"
    )
    not_ready = build(client, waba_channel, template, variables=[])

    assert response.status_code == 400 and response.json()["error"]["details"] == {"template": ["Not found."]}
    assert bad_variables.status_code == 400
    refused = client.post(f"/api/campaigns/{not_ready['id']}/schedule", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "campaign_not_ready"
    assert "takes 2 variables" in refused.json()["error"]["message"]


def test_agents_read_campaigns_but_only_admins_run_them(member_client, waba_channel, template):
    admin, _ = member_client(Role.ADMIN)
    agent, _ = member_client(Role.AGENT)
    campaign = build(admin, waba_channel, template)

    assert agent.get(f"/api/campaigns/{campaign['id']}/funnel").status_code == 200
    assert agent.post(f"/api/campaigns/{campaign['id']}/schedule", {}, format="json").status_code == 403
    assert agent.post("/api/campaigns/", {"name": "x"}, format="json").status_code == 403


def test_a_draft_without_number_or_template_previews_who_it_would_reach(member_client, workspace):
    client, _ = member_client(Role.ADMIN)
    contacts(workspace, 1)
    draft = client.post("/api/campaigns/", {"name": "Borrador"}, format="json").json()

    preview = client.get(f"/api/campaigns/{draft['id']}/preview")

    assert preview.status_code == 200
    assert [(p["contact_name"], p["text"], p["skip_reason"]) for p in preview.json()] == [
        ("Cliente 0", "", "")
    ]


def test_a_media_link_is_stored_as_an_ascii_uri_and_one_meta_cannot_fetch_is_a_400(member_client, workspace):
    """What the API answers must match its own schema (`format: uri`): the fuzzer once stored
    "https://Ù" and read it back. A link pasted from a browser's address bar is taken as written
    there; one without a public host, or not https, is refused with the field named."""
    client, _ = member_client(Role.ADMIN)

    pasted = client.post(
        "/api/campaigns/",
        {"name": "Rebajas", "header_media_url": "https://tiénda.es/fóto-1.jpg?talla=ñ"},
        format="json",
    )
    refused = {
        link: client.post("/api/campaigns/", {"name": "x", "header_media_url": link}, format="json")
        for link in (
            "https://Ù",
            "http://tienda.example/a.jpg",
            "https://u:p@tienda.example/a.jpg",
            "https://",
        )
    }

    assert pasted.status_code == 201, pasted.content
    assert pasted.json()["header_media_url"] == "https://xn--tinda-csa.es/f%C3%B3to-1.jpg?talla=%C3%B1"
    for link, response in refused.items():
        assert response.status_code == 400, link
        assert list(response.json()["error"]["details"]) == ["header_media_url"], link
    assert Campaign.objects.filter(name="x").count() == 0
