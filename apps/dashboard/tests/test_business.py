from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant.models import AssistantSettings, BusinessProfile, KnowledgeEntry, ProviderConfig
from apps.assistant.providers import provider_states
from apps.assistant.services import knowledge_create
from apps.audit.models import AuditEntry

pytestmark = pytest.mark.django_db

IDENTITY = {"section": "identity", "name": "Panadería Sol", "description": "Pan de masa madre", "address": ""}
LANGUAGE = {"section": "language", "languages": "es, en"}


def _hours(timezone="Europe/Madrid", **days):
    return {
        "section": "hours",
        "timezone": timezone,
        **{f"hours_{day}": days.get(day, "") for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    }


def test_an_admin_saves_each_section_and_the_others_keep_their_values(page_client):
    client, admin = page_client(Role.ADMIN)
    client.post("/business/", {"section": "behaviour", "tone": "cercano", "custom_instructions": "Tutea."})

    responses = [client.post("/business/", data) for data in (IDENTITY, LANGUAGE, _hours(mon="9:00-14:00"))]

    assert [r.status_code for r in responses] == [302, 302, 302]
    assert responses[0]["Location"] == "/business/#section-identity"
    profile = BusinessProfile.objects.get(workspace=admin.workspace)
    assert (profile.name, profile.languages, profile.timezone) == (
        "Panadería Sol",
        ["es", "en"],
        "Europe/Madrid",
    )
    assert profile.opening_hours["mon"] == [["09:00", "14:00"]]
    assert (profile.tone, profile.custom_instructions) == ("cercano", "Tutea.")


def test_the_page_shows_every_section_with_its_own_save(page_client):
    client, _ = page_client(Role.ADMIN)

    html = client.get("/business/").content.decode()

    for section in ("identity", "hours", "behaviour", "handoff", "language"):
        assert f'data-testid="section-{section}"' in html
        assert f'data-testid="save-{section}"' in html
        assert f'name="section" value="{section}"' in html


def test_an_unknown_section_is_refused_and_nothing_saved(page_client):
    client, admin = page_client(Role.ADMIN)

    response = client.post("/business/", {"section": "everything", "name": "Otro"})

    assert response.status_code == 400
    assert not BusinessProfile.objects.filter(workspace=admin.workspace, name="Otro").exists()


def test_a_bad_time_zone_is_shown_beside_its_field_and_nothing_saved(page_client):
    client, admin = page_client(Role.ADMIN)
    client.post("/business/", _hours(tue="09:00-17:00"))

    response = client.post("/business/", _hours(timezone="Mars/Olympus", mon="09:00-14:00"))

    assert response.status_code == 400
    html = response.content.decode()
    field = html[html.index('name="timezone"') :]
    assert 'class="error">Unknown time zone.' in field[: field.index("</p>")]
    profile = BusinessProfile.objects.get(workspace=admin.workspace)
    assert (profile.timezone, profile.opening_hours.get("mon")) == ("Europe/Madrid", [])


def test_a_supervisor_may_not_edit_the_profile(page_client):
    client, _ = page_client(Role.SUPERVISOR)

    assert client.post("/business/", IDENTITY).status_code == 403


def test_a_supervisor_adds_edits_and_deletes_an_faq(page_client):
    client, supervisor = page_client(Role.SUPERVISOR)
    ws = supervisor.workspace_id

    client.post(
        "/business/knowledge/", {"kind": "faq", "title": "¿Horario?", "content": "9 a 14", "is_active": "on"}
    )
    entry = KnowledgeEntry.objects.get(workspace_id=ws)
    edit_page = client.get(f"/business/knowledge/{entry.pk}/")
    client.post(
        f"/business/knowledge/{entry.pk}/", {"kind": "faq", "title": "¿Horario?", "content": "9 a 15"}
    )
    entry.refresh_from_db()
    listed = client.get("/business/knowledge/").content.decode()
    client.post(f"/business/knowledge/{entry.pk}/delete/")

    assert edit_page.status_code == 200
    assert (entry.content, entry.is_active) == ("9 a 15", False)
    assert "¿Horario?" in listed
    assert not KnowledgeEntry.objects.filter(workspace_id=ws).exists()


def test_an_agent_reads_knowledge_but_may_not_change_it(page_client):
    client, agent = page_client(Role.AGENT)
    entry = knowledge_create(workspace_id=agent.workspace_id, title="¿Envíos?", content="Sí")

    html = client.get("/business/knowledge/").content.decode()

    assert "¿Envíos?" in html
    assert client.post(f"/business/knowledge/{entry.pk}/delete/").status_code == 403
    assert (
        client.post("/business/knowledge/", {"kind": "faq", "title": "x", "content": "y"}).status_code == 403
    )
    assert KnowledgeEntry.objects.filter(pk=entry.pk).exists()


def test_another_workspaces_entry_is_not_found(page_client):
    client, _ = page_client(Role.OWNER)
    foreign = knowledge_create(workspace_id=WorkspaceFactory.create().pk, title="¿Otro?", content="No")

    assert client.get(f"/business/knowledge/{foreign.pk}/").status_code == 404
    assert client.post(f"/business/knowledge/{foreign.pk}/delete/").status_code == 404


def test_a_supervisor_imports_a_csv(page_client):
    client, supervisor = page_client(Role.SUPERVISOR)
    upload = SimpleUploadedFile("faq.csv", "question,answer\n¿Parking?,Sí\n¿Wifi?,No\n".encode(), "text/csv")

    response = client.post("/business/knowledge/import/", {"file": upload}, follow=True)

    assert sorted(
        KnowledgeEntry.objects.filter(workspace=supervisor.workspace).values_list("title", flat=True)
    ) == ["¿Parking?", "¿Wifi?"]
    assert "2 new" in response.content.decode()


def test_the_providers_page_shows_breakers_and_never_a_key(page_client):
    client, admin = page_client(Role.VIEWER)
    ProviderConfig.objects.create(workspace=admin.workspace, provider="openai", api_key="sk-secret-value")

    html = client.get("/business/providers/").content.decode()

    assert 'data-provider="openai"' in html and 'data-testid="breaker"' in html
    assert "sk-secret-value" not in html
    assert client.post("/business/providers/", {}).status_code == 403


def test_an_admin_sets_order_model_and_key_and_untouched_providers_get_no_row(page_client):
    client, admin = page_client(Role.ADMIN)
    data = {
        "fallback_order": "openai, gemini",
        "openai-enabled": "on",
        "openai-model": "gpt-4o-mini",
        "openai-api_key": "sk-new",
    }
    for state in provider_states(workspace_id=admin.workspace_id):
        if state.provider != "openai":
            data[f"{state.provider}-enabled"] = "on"
            data[f"{state.provider}-model"] = state.model

    response = client.post("/business/providers/", data)

    assert response.status_code == 302
    row = ProviderConfig.objects.get(workspace=admin.workspace, provider="openai")
    assert (row.model, row.api_key, row.enabled) == ("gpt-4o-mini", "sk-new", True)
    assert list(
        ProviderConfig.objects.filter(workspace=admin.workspace).values_list("provider", flat=True)
    ) == ["openai"]
    assert admin.workspace.assistant_settings.fallback_order == ["openai", "gemini"]


def test_an_admin_sets_the_opening_hours_day_by_day(page_client):
    client, admin = page_client(Role.ADMIN)

    response = client.post("/business/", _hours(mon="9:00-14:00, 16:00 - 20:00", sat="10:00–13:00"))
    page = client.get("/business/").content.decode()

    assert response.status_code == 302
    hours = BusinessProfile.objects.get(workspace=admin.workspace).opening_hours
    assert hours["mon"] == [["09:00", "14:00"], ["16:00", "20:00"]]
    assert hours["sat"] == [["10:00", "13:00"]]
    assert hours["sun"] == [] and hours["tue"] == []
    assert 'name="hours_mon" value="09:00-14:00, 16:00-20:00"' in page


@pytest.mark.parametrize(
    ("mon", "problem"),
    [
        ("9 to 5", "Write ranges as 09:00-14:00, separated by commas."),
        ("09:00-14:00, 13:00-18:00", "mon: 09:00-14:00 and 13:00-18:00 overlap."),
        ("18:00-09:00", "mon: 18:00-09:00 must end after it starts."),
    ],
)
def test_bad_opening_hours_are_shown_beside_the_day_and_nothing_saved(page_client, mon, problem):
    client, admin = page_client(Role.ADMIN)
    client.post("/business/", _hours(tue="09:00-17:00"))

    response = client.post("/business/", _hours(mon=mon))

    assert response.status_code == 400
    html = response.content.decode()
    monday = html[html.index('name="hours_mon"') :]
    assert problem in monday[: monday.index("</p>")]
    profile = BusinessProfile.objects.get(workspace=admin.workspace)
    assert (profile.opening_hours["tue"], profile.opening_hours.get("mon")) == ([["09:00", "17:00"]], [])


def test_emptying_every_day_means_the_hours_are_not_known(page_client):
    client, admin = page_client(Role.ADMIN)
    client.post("/business/", _hours(mon="09:00-17:00"))

    client.post("/business/", _hours())

    assert BusinessProfile.objects.get(workspace=admin.workspace).opening_hours == {}


def test_the_hours_fields_speak_spanish(page_client):
    client, _ = page_client(Role.ADMIN)
    client.cookies["django_language"] = "es"

    page = client.get("/business/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert ">Miércoles</label>" in page
    assert 'placeholder="cerrado"' in page


ASSISTANT = {
    "enabled": "on",
    "temperature": "0.7",
    "max_tokens": "600",
    "provider_timeout_seconds": "10",
    "reply_budget_seconds": "25",
    "cache_ttl_seconds": "0",
    "debounce_seconds": "1.5",
    "history_token_budget": "2000",
}


def test_an_admin_saves_the_reply_settings_from_the_providers_page(page_client):
    client, admin = page_client(Role.ADMIN)
    page = client.get("/business/providers/").content.decode()

    response = client.post("/business/assistant/", {**ASSISTANT, "enabled": ""})

    row = AssistantSettings.objects.get(workspace=admin.workspace)
    assert 'name="temperature" value="0.3"' in page
    assert response.status_code == 302 and response["Location"] == "/business/providers/"
    assert (row.enabled, row.temperature, row.max_tokens, row.cache_ttl_seconds) == (False, 0.7, 600, 0)
    assert AuditEntry.objects.filter(action="assistant.update", workspace=admin.workspace).exists()


def test_out_of_range_reply_settings_are_shown_and_nothing_saved(page_client):
    client, admin = page_client(Role.ADMIN)

    response = client.post("/business/assistant/", {**ASSISTANT, "reply_budget_seconds": "900"})

    assert response.status_code == 400
    assert "120" in response.content.decode()  # the limit is said
    assert not AssistantSettings.objects.filter(workspace=admin.workspace, reply_budget_seconds=900).exists()


def test_a_supervisor_may_not_change_the_reply_settings(page_client):
    client, admin = page_client(Role.SUPERVISOR)

    assert client.post("/business/assistant/", ASSISTANT).status_code == 403
    assert not AssistantSettings.objects.filter(workspace=admin.workspace, temperature=0.7).exists()


def test_breaker_states_are_shown_in_the_chosen_language(page_client):
    client, _ = page_client(Role.ADMIN)
    client.cookies["django_language"] = "es"

    page = client.get("/business/providers/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "Circuito: cerrado" in page


def test_the_reply_settings_speak_spanish(page_client):
    client, _ = page_client(Role.ADMIN)
    client.cookies["django_language"] = "es"

    page = client.get("/business/providers/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert ">Tiempo máximo por respuesta (s)</label>" in page
    assert "Guardar ajustes de respuesta" in page
