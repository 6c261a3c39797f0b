"""Contact imports in the background: normalised numbers, per-row errors, progress, idempotent re-runs."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns.models import ContactImport
from apps.campaigns.services import imports
from apps.conversations.models import ConsentRecord, Contact
from apps.conversations.services.contacts import normalize_phone
from apps.conversations.tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/contacts/imports/"
CSV = (
    "phone,name,tags,opted_out,city\n"
    "+34 612 345 678,Ana,vip|madrid,,Madrid\n"
    "612 345 679,Ben,,yes,\n"  # no +country code: the workspace's region (ES)
    "0034612345680,Cris,madrid,,Sevilla\n"
    "12345,Nadie,,,\n"
    "+34 612 345 678,,nuevo,,\n"  # Ana again: tags add up
    "612 345 681,Dani,,quizás,\n"
)


def upload(text: str, **fields):
    return {"file": SimpleUploadedFile("contactos.csv", text.encode(), content_type="text/csv"), **fields}


def test_an_import_runs_in_the_background_and_reports_each_bad_row(
    member_client, tasks_captured, django_capture_on_commit_callbacks
):
    tasks_captured.run("campaigns.contact_import_run")
    client, agent = member_client(Role.AGENT)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, upload(CSV, tags="feria"), format="multipart")

    assert response.status_code == 202, response.content
    assert [call.args for call in tasks_captured.of("campaigns.contact_import_run")] == [
        (response.json()["id"],)
    ]
    job = client.get(f"{URL}{response.json()['id']}/").json()
    assert {
        k: job[k]
        for k in ("status", "region", "total_rows", "processed_rows", "created_count", "error_count")
    } == {
        "status": "done",
        "region": "ES",
        "total_rows": 6,
        "processed_rows": 6,
        "created_count": 3,
        "error_count": 2,
    }
    assert [e["row"] for e in job["errors"]] == [5, 7]
    assert "not a valid phone number" in job["errors"][0]["error"]
    assert "opted_out" in job["errors"][1]["error"]
    contacts = {c.wa_id: c for c in Contact.objects.filter(workspace=agent.workspace)}
    assert set(contacts) == {"34612345678", "34612345679", "34612345680"}
    ana = contacts["34612345678"]
    assert (ana.name, ana.tags, ana.attributes) == (
        "Ana",
        ["vip", "madrid", "nuevo", "feria"],
        {"city": "Madrid"},
    )
    assert contacts["34612345679"].opted_out is True
    assert list(ConsentRecord.objects.values_list("contact__wa_id", "opted_in", "source")) == [
        ("34612345679", False, "csv")
    ]
    assert ContactImport.objects.get().data == b""  # the file is not kept once imported


def test_running_the_same_file_again_changes_nothing(workspace):
    first = imports.contact_import_start(workspace=workspace, data=CSV.encode())
    imports.contact_import_run(import_id=first.pk)
    before = list(
        Contact.objects.order_by("wa_id").values("wa_id", "name", "tags", "attributes", "opted_out")
    )

    again = imports.contact_import_start(workspace=workspace, data=CSV.encode())
    imports.contact_import_run(import_id=again.pk)
    twice = imports.contact_import_run(import_id=again.pk)  # a duplicate task: nothing to do

    again.refresh_from_db()
    assert twice == "skipped"
    assert (again.created_count, again.updated_count, again.error_count) == (0, 0, 2)
    assert (
        list(Contact.objects.order_by("wa_id").values("wa_id", "name", "tags", "attributes", "opted_out"))
        == before
    )
    assert ConsentRecord.objects.count() == 1


def test_an_import_updates_known_contacts_and_never_opts_anyone_back_in(workspace):
    ContactFactory.create(workspace=workspace, wa_id="34612345679", name="Ben", tags=["old"], opted_out=True)
    ContactFactory.create(workspace=WorkspaceFactory.create(), wa_id="34612345678", name="Ajena")
    job = imports.contact_import_start(
        workspace=workspace, data=b"wa_id,name,opted_out\n34612345679,Benito,no\n34612345678,Ana,\n"
    )

    imports.contact_import_run(import_id=job.pk)

    job.refresh_from_db()
    ben = Contact.objects.get(workspace=workspace, wa_id="34612345679")
    assert (job.created_count, job.updated_count) == (1, 1)
    assert (ben.name, ben.tags, ben.opted_out) == ("Benito", ["old"], True)
    assert Contact.objects.get(workspace__slug__isnull=False, wa_id="34612345678", name="Ajena")  # untouched


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+52 55 1234 5678", "ES", "525512345678"),
        ("55 1234 5678", "MX", "525512345678"),
        ("(202) 555-0143", "US", "12025550143"),
        ("0044 20 7946 0958", "ES", "442079460958"),
        ("34612345678", "ES", "34612345678"),
        ("12025550143", "ES", "12025550143"),  # not a Spanish number: a wa_id, with its country code
        ("+34 612 345 678", None, "34612345678"),
    ],
)
def test_numbers_are_normalised_with_the_region(text, region, expected):
    assert normalize_phone(text, region) == expected


def test_a_number_valid_in_no_reading_is_refused():
    with pytest.raises(ValueError, match="not a valid phone number"):
        normalize_phone("612 345 678", None)  # national, and no region to read it in


def test_a_file_without_a_phone_column_or_with_a_bad_region_is_refused_at_once(member_client, tasks_captured):
    client, _ = member_client(Role.AGENT)

    no_phone = client.post(URL, upload("name,tags\nAna,vip\n"), format="multipart")
    bad_region = client.post(URL, upload(CSV, region="XX"), format="multipart")
    bad_column = client.post(URL, upload("phone,Ciudad Natal\n+34612345678,x\n"), format="multipart")

    assert [r.status_code for r in (no_phone, bad_region, bad_column)] == [400, 400, 400]
    assert no_phone.json()["error"]["code"] == "invalid_csv"
    assert not ContactImport.objects.exists()
    assert tasks_captured.of("campaigns.contact_import_run") == []


def test_another_workspaces_import_is_not_found(member_client):
    theirs = ContactImport.objects.create(workspace=WorkspaceFactory.create(), data=b"", region="ES")
    client, _ = member_client(Role.AGENT)

    assert client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert client.get(URL).json()["results"] == []


def test_viewers_cannot_import(member_client):
    client, _ = member_client(Role.VIEWER)

    assert client.post(URL, upload(CSV), format="multipart").status_code == 403
    assert not ContactImport.objects.exists()


def test_twenty_thousand_rows_import_in_batches_whatever_the_row_count(postgres, workspace, settings):
    """The issue's case: 20,000 rows took 60 s inside one request; here in batches, in the background.
    The guard is the statement count (it grows with the batches, not the rows); the time is a figure
    for docs/benchmarks.md (`pytest -s`), not an assertion: the shared machine's load decides it."""
    rows = [
        f"+34 6{n:08d},Cliente {n},lote|campaña,{'yes' if n % 50 == 0 else ''},{n % 7}" for n in range(20_000)
    ]
    data = ("phone,name,tags,opted_out,segment\n" + "\n".join(rows) + "\n").encode()
    job = imports.contact_import_start(workspace=workspace, data=data)

    started, cpu = time.perf_counter(), time.process_time()
    with CaptureQueriesContext(connection) as statements:
        imports.contact_import_run(import_id=job.pk)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    imports.contact_import_run(import_id=imports.contact_import_start(workspace=workspace, data=data).pk)
    again = time.perf_counter() - started

    job.refresh_from_db()
    print(f"\n20,000-row import: {elapsed:.2f} s ({cpu:.2f} s of this process's CPU); again: {again:.2f} s")
    assert (job.status, job.created_count, job.error_count) == ("done", 20_000, 0)
    assert Contact.objects.filter(workspace=workspace).count() == 20_000
    assert Contact.objects.filter(workspace=workspace, opted_out=True).count() == 400
    assert ConsentRecord.objects.count() == 400
    batches = -(-20_000 // settings.CAMPAIGNS_IMPORT_BATCH)
    assert len(statements) <= 20 * batches  # a handful per batch, never one per row
