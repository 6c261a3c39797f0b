"""The settings pages: FAQ list and example file, providers' test call, WhatsApp numbers, members, audit log."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.assistant.models import KnowledgeEntry, ProviderConfig
from apps.assistant.services import knowledge_create, knowledge_import
from apps.audit.models import AuditEntry
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def _spanish(client):
    client.cookies["django_language"] = "es"
    return client


# --- FAQ list ---------------------------------------------------------------------------------------
def test_the_faq_list_is_searched_and_filtered_by_language_on_the_server(page_client):
    client, viewer = page_client(Role.VIEWER)
    ws = viewer.workspace_id
    knowledge_create(workspace_id=ws, title="¿Tenéis parking?", content="Sí, gratis", language="es")
    knowledge_create(workspace_id=ws, title="Is there parking?", content="Yes, free", language="en")
    knowledge_create(workspace_id=ws, title="¿Wifi?", content="Sí", language="es")

    both = client.get("/business/knowledge/?q=parking").content.decode()
    english = client.get("/business/knowledge/?q=parking&language=en").content.decode()

    assert "¿Tenéis parking?" in both and "Is there parking?" in both and "¿Wifi?" not in both
    assert "Is there parking?" in english and "¿Tenéis parking?" not in english
    assert '<option value="en">en</option>' in both  # the filter offers the languages in use


def test_the_faq_list_is_paginated_and_keeps_the_filters_between_pages(page_client):
    client, viewer = page_client(Role.VIEWER)
    for n in range(30):
        knowledge_create(
            workspace_id=viewer.workspace_id, title=f"Pregunta {n:02d}", content="R", language="es"
        )

    first = client.get("/business/knowledge/?language=es").content.decode()
    second = client.get("/business/knowledge/?language=es&page=2").content.decode()

    assert first.count('data-testid="knowledge-row"') == 25
    assert second.count('data-testid="knowledge-row"') == 5
    assert 'href="?language=es&amp;page=2"' in first
    assert "30 entries" in first


def test_the_example_csv_has_both_languages_and_imports_as_it_is(page_client, workspace):
    client, _ = page_client(Role.VIEWER)

    response = client.get("/business/knowledge/example.csv")
    body = response.content
    report = knowledge_import(workspace_id=workspace.pk, filename="faq-example.csv", content=body)

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert body.decode().splitlines()[0] == "question,answer,language"
    assert (report.created, report.errors) == (4, [])
    languages = KnowledgeEntry.objects.filter(workspace=workspace).values_list("language", flat=True)
    assert sorted(set(languages)) == ["en", "es"]


def test_the_import_says_which_columns_it_reads(page_client):
    client, _ = page_client(Role.SUPERVISOR)

    html = client.get("/business/knowledge/").content.decode()

    assert "<code>question</code>" in html and "<code>pregunta</code>" in html
    assert 'href="/business/knowledge/example.csv"' in html


# --- providers -----------------------------------------------------------------------------------------
def test_each_provider_is_one_line_that_opens_to_edit(page_client):
    client, _ = page_client(Role.ADMIN)

    html = client.get("/business/providers/").content.decode()

    assert html.count('data-testid="provider-row"') == html.count("<details") == 7
    assert 'data-testid="provider-test"' in html


def test_why_a_provider_is_not_usable_speaks_spanish(page_client, settings):
    settings.GEMINI_API_KEY = ""
    client, _ = page_client(Role.ADMIN)

    html = _spanish(client).get("/business/providers/").content.decode()

    assert "sin clave de API (ponla aquí o en GEMINI_API_KEY)" in html
    assert "no API key" not in html


def test_a_test_call_goes_to_the_provider_and_shows_its_answer(page_client, standin_providers, llm_standin):
    client, admin = page_client(Role.ADMIN)
    standin_providers(admin.workspace_id, ["openai_compatible"])

    response = client.post("/business/providers/openai_compatible/test/", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="provider-test-ok"' in html and "openai_compatible-model" in html
    requests = llm_standin.chat_requests()
    assert len(requests) == 1 and requests[0].model == "openai_compatible-model"


def test_a_failed_test_call_is_explained_in_spanish(page_client, standin_providers, llm_standin):
    client, admin = page_client(Role.ADMIN)
    standin_providers(admin.workspace_id, ["openai_compatible"])
    llm_standin.fail_next(status=401)

    html = _spanish(client).post("/business/providers/openai_compatible/test/", HTTP_HX_REQUEST="true")

    text = html.content.decode()
    assert 'data-testid="provider-test-failed"' in text
    assert "El proveedor rechazó la clave de API." in text and "(HTTP 401)" in text


def test_a_provider_without_a_key_is_not_called_and_says_why(page_client, settings):
    settings.OPENAI_API_KEY = ""
    client, admin = page_client(Role.ADMIN)

    response = client.post("/business/providers/openai/test/", follow=True)

    assert "no API key (set it here or in OPENAI_API_KEY)" in response.content.decode()
    assert not ProviderConfig.objects.filter(workspace=admin.workspace).exists()


def test_a_supervisor_may_not_run_a_test_call(page_client):
    client, _ = page_client(Role.SUPERVISOR)

    assert client.post("/business/providers/openai/test/").status_code == 403


# --- WhatsApp numbers ---------------------------------------------------------------------------------
def test_the_numbers_page_gives_the_webhook_url_and_the_verify_token(page_client, settings):
    settings.ALLOWED_HOSTS = ["chat.example.com"]
    client, admin = page_client(Role.ADMIN)
    ChannelFactory.create(workspace=admin.workspace, verify_token="paste-me-into-meta")

    html = client.get("/settings/numbers/", HTTP_HOST="chat.example.com", secure=True).content.decode()

    assert 'value="https://chat.example.com/webhooks/whatsapp/"' in html
    assert 'value="paste-me-into-meta"' in html
    assert 'data-testid="webhook-not-https"' not in html


def test_over_plain_http_the_page_warns_that_meta_wants_https(page_client):
    client, _ = page_client(Role.ADMIN)

    html = client.get("/settings/numbers/").content.decode()

    assert 'data-testid="webhook-not-https"' in html


def test_only_admins_see_the_numbers_page(page_client):
    client, supervisor = page_client(Role.SUPERVISOR)
    ChannelFactory.create(workspace=supervisor.workspace, verify_token="paste-me-into-meta")

    response = client.get("/settings/numbers/")

    assert response.status_code == 403
    assert b"paste-me-into-meta" not in response.content


def test_a_new_verify_token_is_made_and_audited_without_its_value(page_client):
    client, admin = page_client(Role.ADMIN)
    channel = ChannelFactory.create(workspace=admin.workspace, verify_token="")

    client.post(f"/settings/numbers/{channel.pk}/verify-token/")

    channel.refresh_from_db()
    assert len(channel.verify_token) >= 24
    entry = AuditEntry.objects.get(workspace=admin.workspace, action="channel.update")
    assert channel.verify_token not in str(entry.details)


def test_check_connection_shows_the_name_and_quality_meta_gives(page_client, cloud_settings, graph_standin):
    client, admin = page_client(Role.ADMIN)
    channel = ChannelFactory.create(workspace=admin.workspace, access_token="good-token")
    graph_standin.add_number(
        channel.phone_number_id, "good-token", verified_name="Panadería Sol", quality_rating="YELLOW"
    )

    html = client.post(f"/settings/numbers/{channel.pk}/check/", HTTP_HX_REQUEST="true").content.decode()

    assert 'data-testid="channel-check-ok"' in html and "Panadería Sol" in html
    assert 'data-testid="channel-quality">Medium<' in html
    asked = [r for r in graph_standin.requests if r.get("method") == "GET"]
    assert [r["path"].rsplit("/", 1)[-1] for r in asked] == [channel.phone_number_id]


def test_a_refused_token_is_explained_in_spanish(page_client, cloud_settings, graph_standin):
    client, admin = page_client(Role.ADMIN)
    channel = ChannelFactory.create(workspace=admin.workspace, access_token="stale-token")
    graph_standin.add_number(channel.phone_number_id, "other-token")

    html = _spanish(client).post(f"/settings/numbers/{channel.pk}/check/", HTTP_HX_REQUEST="true")

    text = html.content.decode()
    assert 'data-testid="channel-check-failed"' in text
    assert "WhatsApp no acepta este token de acceso." in text


def test_a_sandbox_number_is_not_checked_with_meta(page_client, cloud_settings, graph_standin):
    client, admin = page_client(Role.ADMIN)
    channel = ChannelFactory.create(workspace=admin.workspace, kind=Channel.Kind.SANDBOX, phone_number_id="")

    html = client.post(f"/settings/numbers/{channel.pk}/check/", HTTP_HX_REQUEST="true").content.decode()

    assert "Only a Cloud API number is checked with Meta." in html
    assert graph_standin.requests == []


# --- members --------------------------------------------------------------------------------------------
def test_an_admin_adds_a_member_changes_the_role_and_removes_them(page_client):
    client, admin = page_client(Role.ADMIN)
    slug = admin.workspace.slug

    added = client.post(
        "/settings/members/", {"username": "lucia", "password": "a-long-pass-phrase-42", "role": "agent"}
    )
    member = Membership.objects.get(workspace=admin.workspace, user__username=f"lucia.{slug}")
    changed = client.post(f"/settings/members/{member.pk}/role/", {"role": "supervisor"})
    member.refresh_from_db()
    role_after_change = member.role
    removed = client.post(f"/settings/members/{member.pk}/remove/")

    assert [r.status_code for r in (added, changed, removed)] == [302, 302, 302]
    assert role_after_change == Role.SUPERVISOR
    assert not Membership.objects.filter(pk=member.pk).exists()
    actions = AuditEntry.objects.filter(workspace=admin.workspace).values_list("action", flat=True)
    assert sorted(actions) == ["member.create", "member.remove", "member.role_change"]


def test_a_bad_member_is_shown_beside_the_field_and_nothing_created(page_client):
    client, admin = page_client(Role.ADMIN)

    response = client.post("/settings/members/", {"username": "a b", "password": "x", "role": "agent"})

    assert response.status_code == 400
    assert "no spaces" in response.content.decode()
    assert Membership.objects.filter(workspace=admin.workspace).count() == 1


def test_an_admin_may_not_make_an_owner(page_client):
    client, admin = page_client(Role.ADMIN)
    member = MembershipFactory.create(workspace=admin.workspace, role=Role.AGENT)

    response = client.post(f"/settings/members/{member.pk}/role/", {"role": "owner"}, follow=True)

    member.refresh_from_db()
    assert member.role == Role.AGENT
    assert "You cannot grant a role above your own." in response.content.decode()


def test_a_refused_change_is_said_in_spanish(page_client):
    client, admin = page_client(Role.ADMIN)
    member = MembershipFactory.create(workspace=admin.workspace, role=Role.AGENT)

    response = _spanish(client).post(f"/settings/members/{member.pk}/role/", {"role": "owner"}, follow=True)

    assert "No puedes dar un rol superior al tuyo." in response.content.decode()


def test_a_viewer_reads_the_members_but_gets_no_controls(page_client):
    client, viewer = page_client(Role.VIEWER)
    MembershipFactory.create(workspace=viewer.workspace, role=Role.AGENT)

    html = client.get("/settings/members/").content.decode()

    assert html.count('data-testid="member-row"') == 2
    assert 'data-testid="member-role"' not in html and 'data-testid="member-add"' not in html


# --- audit log ------------------------------------------------------------------------------------------
def _entry(workspace, actor, action, when):
    entry = AuditEntry.objects.create(workspace=workspace, actor=actor, action=action, target_type="x")
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=when)
    return entry


def test_the_audit_log_filters_by_actor_action_and_date(page_client):
    client, admin = page_client(Role.ADMIN)
    other = MembershipFactory.create(workspace=admin.workspace, role=Role.ADMIN)
    day = datetime.datetime(2026, 11, 2, 12, tzinfo=datetime.UTC)
    _entry(admin.workspace, admin.user, "providers.update", day)
    _entry(admin.workspace, other.user, "providers.update", day)
    _entry(admin.workspace, admin.user, "member.create", day)
    _entry(admin.workspace, admin.user, "providers.update", day + datetime.timedelta(days=3))
    _entry(WorkspaceFactory.create(), admin.user, "providers.update", day)

    html = client.get(
        f"/settings/audit/?actor={admin.user_id}&action=providers.update&since=2026-11-02&until=2026-11-02"
    ).content.decode()

    assert html.count('data-testid="audit-row"') == 1


def test_the_audit_log_is_paginated(page_client):
    client, admin = page_client(Role.ADMIN)
    now = timezone.now()
    for n in range(55):
        _entry(admin.workspace, admin.user, "member.create", now - datetime.timedelta(minutes=n))

    first = client.get("/settings/audit/").content.decode()
    second = client.get("/settings/audit/?page=2").content.decode()

    assert (first.count('data-testid="audit-row"'), second.count('data-testid="audit-row"')) == (50, 5)


def test_an_end_before_the_start_is_said_beside_the_field(page_client):
    client, _ = page_client(Role.ADMIN)

    html = client.get("/settings/audit/?since=2026-11-05&until=2026-11-01").content.decode()

    assert "The end comes before the start." in html


def test_a_supervisor_may_not_read_the_audit_log(page_client):
    client, _ = page_client(Role.SUPERVISOR)

    assert client.get("/settings/audit/").status_code == 403
