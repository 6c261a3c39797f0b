from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.assistant import services
from apps.assistant.models import BusinessProfile, KnowledgeChunk, KnowledgeEntry, ProviderConfig, ReplyUsage

pytestmark = pytest.mark.django_db
SECRET = "sk-admin-test-secret-value"


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_the_api_key_is_written_through_the_form_and_never_shown(admin_client):
    workspace = WorkspaceFactory()
    form = {
        "workspace": workspace.pk,
        "provider": "openai",
        "enabled": "on",
        "model": "gpt-4.1-mini",
        "base_url": "",
    }

    added = admin_client.post("/admin/assistant/providerconfig/add/", {**form, "new_api_key": SECRET})
    config = ProviderConfig.objects.get(workspace=workspace)
    page = admin_client.get(f"/admin/assistant/providerconfig/{config.pk}/change/")
    listing = admin_client.get("/admin/assistant/providerconfig/")
    kept = admin_client.post(
        f"/admin/assistant/providerconfig/{config.pk}/change/", {**form, "new_api_key": ""}
    )
    config.refresh_from_db()
    key_after_empty_field = config.api_key
    admin_client.post(f"/admin/assistant/providerconfig/{config.pk}/change/", {**form, "clear_api_key": "on"})
    config.refresh_from_db()

    assert added.status_code == 302
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert SECRET not in listing.content.decode()
    assert "not set" not in listing.content.decode() and ">set<" in listing.content.decode()
    assert kept.status_code == 302
    assert key_after_empty_field == SECRET
    assert config.api_key == ""


def test_knowledge_saved_in_the_admin_is_chunked_and_bumps_the_version(admin_client):
    workspace = WorkspaceFactory()
    before = services.profile_get_or_create(workspace_id=workspace.pk).knowledge_version

    response = admin_client.post(
        "/admin/assistant/knowledgeentry/add/",
        {
            "workspace": workspace.pk,
            "kind": "faq",
            "title": "¿Tienen parking?",
            "content": "Sí.",
            "language": "ES",
            "source": "",
            "is_active": "on",
            "chunks-TOTAL_FORMS": "0",
            "chunks-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = KnowledgeEntry.objects.get(workspace=workspace)
    assert entry.language == "es"
    assert list(KnowledgeChunk.objects.filter(entry=entry).values_list("text", flat=True)) == ["Sí."]
    assert BusinessProfile.objects.get(workspace=workspace).knowledge_version == before + 1
    page = admin_client.get(f"/admin/assistant/knowledgeentry/{entry.pk}/change/")
    assert page.status_code == 200


def test_bad_opening_hours_are_a_form_error_in_the_admin(admin_client):
    workspace = WorkspaceFactory()
    profile = services.profile_get_or_create(workspace_id=workspace.pk)

    response = admin_client.post(
        f"/admin/assistant/businessprofile/{profile.pk}/change/",
        {
            "name": "Luna",
            "tone": "",
            "languages": '["es"]',
            "opening_hours": '{"lunes": []}',
            "timezone": "UTC",
        },
    )

    assert response.status_code == 200
    assert "Unknown day &#x27;lunes&#x27;" in response.content.decode()
    profile.refresh_from_db()
    assert (profile.name, profile.opening_hours, profile.version) == (workspace.name, {}, 1)


def test_reply_usage_is_read_only_in_the_admin(admin_client):
    usage = ReplyUsage.objects.create(workspace=WorkspaceFactory(), provider="offline")

    assert admin_client.get("/admin/assistant/replyusage/").status_code == 200
    assert admin_client.get("/admin/assistant/replyusage/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/assistant/replyusage/{usage.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert ReplyUsage.objects.filter(pk=usage.pk).exists()


def test_editing_knowledge_in_the_admin_rewrites_its_chunks(admin_client):
    workspace = WorkspaceFactory()
    entry = services.knowledge_create(workspace_id=workspace.pk, title="¿Parking?", content="No.")
    page = admin_client.get(f"/admin/assistant/knowledgeentry/{entry.pk}/change/").content.decode()
    inline = dict(re.findall(r'name="(chunks-[\w-]+)" value="([^"]*)"', page))

    response = admin_client.post(
        f"/admin/assistant/knowledgeentry/{entry.pk}/change/",
        {
            "kind": "faq",
            "title": "¿Parking?",
            "content": "Sí, gratis.",
            "language": "",
            "source": "",
            "is_active": "on",
            **inline,
        },
    )

    assert inline["chunks-INITIAL_FORMS"] == "1"
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(KnowledgeChunk.objects.filter(entry=entry).values_list("text", flat=True)) == ["Sí, gratis."]


def test_model_downloads_are_listed_read_only(admin_client):
    from apps.assistant.models import ModelPull

    pull = ModelPull.objects.create(workspace=WorkspaceFactory(), model="qwen2.5:7b", status="pulling")

    listing = admin_client.get("/admin/assistant/modelpull/")
    add = admin_client.get("/admin/assistant/modelpull/add/")
    admin_client.post(f"/admin/assistant/modelpull/{pull.pk}/change/", {"status": "success"})

    assert listing.status_code == 200 and "qwen2.5:7b" in listing.content.decode()
    assert add.status_code == 403
    pull.refresh_from_db()
    assert pull.status == "pulling"
