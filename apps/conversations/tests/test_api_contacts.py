from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework import serializers

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Contact, Conversation
from apps.conversations.services.contacts import MAX_IMPORT_BYTES
from apps.conversations.tests.factories import ContactFactory, ConversationFactory

pytestmark = pytest.mark.django_db


def iso(value) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def upload(text: str, name: str = "contacts.csv") -> dict[str, SimpleUploadedFile]:
    return {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")}


# --- create, edit, delete -----------------------------------------------------------------------
def test_agent_creates_a_contact_and_a_leading_plus_is_stripped(member_client):
    client, agent = member_client(Role.AGENT)

    response = client.post(
        "/api/contacts/",
        {"wa_id": "+34600111222", "name": "Ana", "language": "es", "tags": [" vip ", "Madrid", "VIP"]},
        format="json",
    )

    assert response.status_code == 201
    contact = Contact.objects.get()
    assert response.json() == {
        "id": contact.pk,
        "wa_id": "34600111222",
        "bsuid": "",
        "name": "Ana",
        "profile_name": "",
        "display_name": "Ana",
        "language": "es",
        "tags": ["vip", "Madrid"],
        "attributes": {},
        "notes": "",
        "opted_out": False,
        "opted_out_at": None,
        "created_at": iso(contact.created_at),
    }
    assert contact.workspace_id == agent.workspace_id


@pytest.mark.parametrize(
    "wa_id",
    ["123456", "1234567890123456", "34 600 111 222", "+34abc11122", "++34600111222", "٣٤٦٠٠١١١٢٢٢"],
)
def test_a_wa_id_that_is_not_7_to_15_digits_is_refused(member_client, wa_id):
    client, _ = member_client(Role.AGENT)

    response = client.post("/api/contacts/", {"wa_id": wa_id}, format="json")

    assert response.status_code == 400
    assert "wa_id" in response.json()["error"]["details"]
    assert not Contact.objects.exists()


def test_a_contact_needs_a_wa_id_or_a_bsuid(member_client):
    client, _ = member_client(Role.AGENT)

    without = client.post("/api/contacts/", {"name": "Nobody"}, format="json")
    with_bsuid = client.post("/api/contacts/", {"bsuid": "US.13491208655302741918"}, format="json")

    assert without.status_code == 400
    assert with_bsuid.status_code == 201
    assert list(Contact.objects.values_list("bsuid", "wa_id")) == [("US.13491208655302741918", "")]


def test_a_duplicate_in_the_workspace_is_a_conflict_but_not_across_workspaces(member_client):
    client, agent = member_client(Role.AGENT)
    ContactFactory(workspace=agent.workspace, wa_id="34600111222", name="First")
    ContactFactory(workspace=WorkspaceFactory(), wa_id="34600999888")

    duplicate = client.post("/api/contacts/", {"wa_id": "+34600111222", "name": "Second"}, format="json")
    elsewhere = client.post("/api/contacts/", {"wa_id": "34600999888"}, format="json")

    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "duplicate_contact"
    assert elsewhere.status_code == 201
    assert list(Contact.objects.filter(wa_id="34600111222").values_list("name", flat=True)) == ["First"]


def test_editing_opted_out_records_the_staff_as_its_source(member_client):
    client, agent = member_client(Role.AGENT)
    contact = ContactFactory(workspace=agent.workspace, name="Ana", tags=["vip"])

    opted_out = client.patch(
        f"/api/contacts/{contact.pk}/", {"opted_out": True, "notes": "Pidió baja"}, format="json"
    )
    contact.refresh_from_db()
    after_out = (contact.opted_out, contact.opt_out_source, contact.opted_out_at is not None, contact.notes)
    opted_in = client.patch(f"/api/contacts/{contact.pk}/", {"opted_out": False}, format="json")
    contact.refresh_from_db()

    assert opted_out.status_code == 200
    assert after_out == (True, "staff", True, "Pidió baja")
    assert opted_out.json()["opted_out_at"] is not None
    assert (opted_in.status_code, contact.opted_out, contact.opted_out_at) == (200, False, None)
    assert (contact.name, contact.tags) == ("Ana", ["vip"])


def test_an_edit_may_not_leave_a_contact_without_any_id(member_client):
    client, agent = member_client(Role.AGENT)
    contact = ContactFactory(workspace=agent.workspace, wa_id="34600111222", bsuid="")

    response = client.patch(f"/api/contacts/{contact.pk}/", {"wa_id": ""}, format="json")

    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.wa_id == "34600111222"


def test_editing_into_another_contacts_wa_id_is_a_conflict(member_client):
    client, agent = member_client(Role.AGENT)
    ContactFactory(workspace=agent.workspace, wa_id="34600111222")
    contact = ContactFactory(workspace=agent.workspace, wa_id="34600333444")

    response = client.patch(f"/api/contacts/{contact.pk}/", {"wa_id": "34600111222"}, format="json")

    assert response.status_code == 409
    contact.refresh_from_db()
    assert contact.wa_id == "34600333444"


def test_roles_viewer_reads_agent_edits_supervisor_deletes(member_client):
    viewer_client, viewer = member_client(Role.VIEWER)
    agent_client, _ = member_client(Role.AGENT)
    supervisor_client, _ = member_client(Role.SUPERVISOR)
    contact = ContactFactory(workspace=viewer.workspace, name="Ana")
    ConversationFactory(channel__workspace=viewer.workspace, contact=contact)
    url = f"/api/contacts/{contact.pk}/"

    viewer_answers = [
        viewer_client.get(url).status_code,
        viewer_client.post("/api/contacts/", {"wa_id": "34600999888"}, format="json").status_code,
        viewer_client.patch(url, {"name": "Hijacked"}, format="json").status_code,
        viewer_client.delete(url).status_code,
        viewer_client.post("/api/contacts/import", upload("wa_id\n34600999888\n")).status_code,
    ]
    agent_delete = agent_client.delete(url).status_code
    contact.refresh_from_db()
    still_there = (contact.name, Conversation.objects.count())
    supervisor_delete = supervisor_client.delete(url).status_code

    assert viewer_answers == [200, 403, 403, 403, 403]
    assert agent_delete == 403
    assert still_there == ("Ana", 1)
    assert supervisor_delete == 204
    assert not Contact.objects.exists()
    assert not Conversation.objects.exists()


def test_another_workspaces_contact_answers_404_and_is_left_alone(member_client):
    client, _ = member_client(Role.OWNER)
    foreign = ContactFactory(workspace=WorkspaceFactory(), name="Theirs")
    url = f"/api/contacts/{foreign.pk}/"

    responses = [client.get(url), client.patch(url, {"name": "Mine"}, format="json"), client.delete(url)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    foreign.refresh_from_db()
    assert foreign.name == "Theirs"


# --- list and filters ---------------------------------------------------------------------------
def test_filters_by_text_tag_and_opt_out(member_client):
    client, viewer = member_client(Role.VIEWER)
    ws = viewer.workspace
    ana = ContactFactory(workspace=ws, name="Ana López", tags=["VIP", "madrid"])
    bea = ContactFactory(workspace=ws, profile_name="bea.ana", tags=["vipish"], opted_out=True)
    carla = ContactFactory(workspace=ws, wa_id="5215550001234", tags=["café"])
    ContactFactory(workspace=WorkspaceFactory(), name="Ana elsewhere", tags=["vip"])

    assert ids(client.get("/api/contacts/?q=ana")) == [bea.pk, ana.pk]
    assert ids(client.get("/api/contacts/?q=%2B521555")) == [carla.pk]
    assert ids(client.get("/api/contacts/?tag=vip")) == [ana.pk]
    assert ids(client.get("/api/contacts/?tag=café")) == [carla.pk]
    assert ids(client.get("/api/contacts/?opted_out=true")) == [bea.pk]
    assert ids(client.get("/api/contacts/?opted_out=false")) == [carla.pk, ana.pk]
    assert ids(client.get("/api/contacts/")) == [carla.pk, bea.pk, ana.pk]


# --- import -------------------------------------------------------------------------------------
def test_import_creates_and_updates_and_reports_bad_rows_by_number(member_client):
    client, agent = member_client(Role.AGENT)
    existing = ContactFactory(workspace=agent.workspace, wa_id="34600000001", name="Old name", language="en")
    other_workspace_twin = ContactFactory(workspace=WorkspaceFactory(), wa_id="34600000002", name="Theirs")
    csv_text = (
        "wa_id,name,language,tags,opted_out\n"
        "+34600000001,Ana,,vip|madrid,\n"  # row 2: updates, keeps the language
        "34600000002,Bea,es,cliente;nuevo,false\n"  # row 3: new here
        "not-a-number,Carla,es,,\n"  # row 4: bad wa_id
        "34600000004,Dani,es,,maybe\n"  # row 5: bad flag
        "\n"  # row 6: blank, skipped
        "34600000007,Eva,en,,yes\n"  # row 7: new, opted out
    )

    response = client.post("/api/contacts/import", upload(csv_text))

    assert response.status_code == 200
    assert response.json() == {
        "created": 2,
        "updated": 1,
        "errors": [
            {"row": 4, "error": "'not-a-number' is not a valid phone number (with its +country code)."},
            {"row": 5, "error": "opted_out must be true or false, not 'maybe'."},
        ],
    }
    existing.refresh_from_db()
    assert (existing.name, existing.language, existing.tags) == ("Ana", "en", ["vip", "madrid"])
    bea = Contact.objects.get(workspace=agent.workspace, wa_id="34600000002")
    assert (bea.name, bea.language, bea.tags, bea.opted_out) == ("Bea", "es", ["cliente", "nuevo"], False)
    eva = Contact.objects.get(workspace=agent.workspace, wa_id="34600000007")
    assert (eva.opted_out, eva.opt_out_source) == (True, "import")
    assert not Contact.objects.filter(name__in=["Carla", "Dani"]).exists()
    other_workspace_twin.refresh_from_db()
    assert other_workspace_twin.name == "Theirs"


def test_import_normalises_numbers_written_as_people_write_them(member_client):
    client, agent = member_client(Role.AGENT)
    existing = ContactFactory(workspace=agent.workspace, wa_id="34612345678", name="Ana")
    csv_text = (
        "wa_id,name\n"
        "+34 612 345 678,Ana María\n"  # the same contact as 34612345678
        "0052 55 1234 5678,Bea\n"
        "(202) 555-0143,Carla\n"  # no country code: a wa_id always has one, and 202... has none
        "+34 612 345,Dani\n"  # too short for Spain
    )

    response = client.post("/api/contacts/import", upload(csv_text))

    assert response.json() == {
        "created": 1,
        "updated": 1,
        "errors": [
            {"row": 4, "error": "'(202) 555-0143' is not a valid phone number (with its +country code)."},
            {"row": 5, "error": "'+34 612 345' is not a valid phone number (with its +country code)."},
        ],
    }
    existing.refresh_from_db()
    assert existing.name == "Ana María"
    assert list(
        Contact.objects.filter(workspace=agent.workspace).order_by("wa_id").values_list("wa_id", "name")
    ) == [("34612345678", "Ana María"), ("525512345678", "Bea")]


def test_import_never_opts_back_in_a_contact_who_opted_out(member_client):
    client, agent = member_client(Role.AGENT)
    contact = ContactFactory(
        workspace=agent.workspace, wa_id="34600000001", opted_out=True, opt_out_source="customer"
    )

    response = client.post("/api/contacts/import", upload("wa_id,opted_out\n34600000001,false\n"))

    assert response.json() == {"created": 0, "updated": 1, "errors": []}
    contact.refresh_from_db()
    assert (contact.opted_out, contact.opt_out_source) == (True, "customer")


def test_import_takes_a_text_csv_body_and_semicolon_separated_columns(member_client):
    client, agent = member_client(Role.AGENT)

    response = client.generic(
        "POST",
        "/api/contacts/import",
        "\ufeffwa_id;name;tags\n34600000001;Ana;vip|madrid\n".encode(),
        content_type="text/csv",
    )

    assert response.status_code == 200
    assert response.json() == {"created": 1, "updated": 0, "errors": []}
    assert list(Contact.objects.values_list("workspace_id", "wa_id", "name", "tags")) == [
        (agent.workspace_id, "34600000001", "Ana", ["vip", "madrid"])
    ]


def test_import_without_a_wa_id_column_is_refused(member_client):
    client, _ = member_client(Role.AGENT)

    response = client.post("/api/contacts/import", upload("phone,name\n34600000001,Ana\n"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_csv"
    assert not Contact.objects.exists()


def test_an_import_over_5_mb_is_refused_with_413_and_saves_nothing(member_client):
    client, _ = member_client(Role.AGENT)
    first_row = "wa_id,name\n34600000001,Ana\n"
    oversized = first_row + "x" * (MAX_IMPORT_BYTES - len(first_row) + 1)

    as_file = client.post("/api/contacts/import", upload(oversized))
    as_body = client.generic("POST", "/api/contacts/import", oversized.encode(), content_type="text/csv")

    assert (as_file.status_code, as_body.status_code) == (413, 413)
    assert as_file.json()["error"]["code"] == "too_large"
    assert not Contact.objects.exists()


# --- export -------------------------------------------------------------------------------------
def test_export_streams_exactly_this_workspaces_contacts(member_client):
    client, viewer = member_client(Role.VIEWER)
    ana = ContactFactory(
        workspace=viewer.workspace, wa_id="34600000001", name="Ana", language="es", tags=["vip", "madrid"]
    )
    bea = ContactFactory(
        workspace=viewer.workspace, wa_id="34600000002", name="=HYPERLINK(1)", opted_out=True
    )
    ContactFactory(workspace=WorkspaceFactory(), wa_id="34600000003", name="Theirs")
    Contact.objects.filter(pk=ana.pk).update(created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    Contact.objects.filter(pk=bea.pk).update(created_at=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC))

    response = client.get("/api/contacts/export")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="contacts.csv"'
    # A name that would run as a spreadsheet formula is exported quoted.
    assert b"".join(response.streaming_content).decode() == (
        "wa_id,name,language,tags,opted_out,created_at\r\n"
        "34600000001,Ana,es,vip|madrid,false,2026-01-02T03:04:05+00:00\r\n"
        "34600000002,'=HYPERLINK(1),,,true,2026-02-03T04:05:06+00:00\r\n"
    )


def test_an_export_imports_back_unchanged(member_client):
    client, agent = member_client(Role.AGENT)
    ContactFactory(workspace=agent.workspace, wa_id="34600000001", name="=Ana", language="es", tags=["vip"])
    exported = b"".join(client.get("/api/contacts/export").streaming_content).decode()
    Contact.objects.all().delete()

    response = client.post("/api/contacts/import", upload(exported))

    assert response.json() == {"created": 1, "updated": 0, "errors": []}
    assert list(Contact.objects.values_list("wa_id", "name", "language", "tags")) == [
        ("34600000001", "=Ana", "es", ["vip"])
    ]


def test_export_needs_a_member(api_client):
    assert api_client.get("/api/contacts/export").status_code == 401
