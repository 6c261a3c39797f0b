"""Contact imports in the background: a CSV is stored, then a task on queue `campaigns` writes it in
batches, with progress and per-row errors.

Phone numbers are normalised by `contacts.normalize_phone`, as in the synchronous import ("+34 612 345
678", "612345678" with region ES, "0034 612..." all become 34612345678). A row is matched on that number; running the same file again
changes nothing (tags and attributes merge, opt-outs never reverse), so a retried or repeated import
is harmless. An import opts contacts out (recorded as consent, source csv) but never back in.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.campaigns.models import ContactImport
from apps.campaigns.services.audiences import audience_settings, region_check
from apps.conversations.models import Contact
from apps.conversations.services.contacts import (
    MAX_TAGS,
    PayloadTooLarge,
    normalize_attributes,
    normalize_phone,
    normalize_tags,
)
from apps.conversations.services.optout import contacts_opt_out_many
from chatbot.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

PHONE_COLUMNS = ("phone", "wa_id", "telefono", "teléfono")
KNOWN_COLUMNS = frozenset(
    {*PHONE_COLUMNS, "name", "nombre", "language", "idioma", "tags", "etiquetas", "opted_out"}
)
_TRUE = {"1", "true", "yes", "y", "x", "si", "sí"}
_FALSE = {"0", "false", "no", "n", ""}
_FORMULA_QUOTED = ("'=", "'+", "'-", "'@")


def contact_import_start(
    *,
    workspace: Any,
    data: bytes,
    filename: str = "",
    region: str = "",
    tags: Iterable[str] = (),
    user: Any = None,
) -> ContactImport:
    """Store the CSV and queue its import (after commit). The header is checked now, so a wrong file is
    refused at once; rows are checked by the task."""
    from apps.campaigns.tasks import contact_import_run

    if len(data) > settings.CAMPAIGNS_IMPORT_MAX_BYTES:
        raise PayloadTooLarge(
            f"The file is larger than {settings.CAMPAIGNS_IMPORT_MAX_BYTES // (1024 * 1024)} MB."
        )
    header, _ = _parse(data)
    _columns(header)
    try:
        import_tags = normalize_tags(tags)
    except ValueError as exc:
        raise ValidationFailed(str(exc), code="invalid") from exc
    region = region_check(region) if region else audience_settings(workspace_id=workspace.pk).default_region
    job = ContactImport.objects.create(
        workspace=workspace,
        created_by=user,
        filename=filename[:255],
        data=data,
        region=region,
        tags=import_tags,
    )
    job_id = job.pk
    transaction.on_commit(lambda: contact_import_run.delay(job_id), robust=True)
    return job


def _parse(data: bytes) -> tuple[list[str], list[list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The file must be UTF-8 encoded CSV.", code="invalid_csv") from exc
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # spreadsheets of many locales
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ValidationFailed(f"Not valid CSV: {exc}", code="invalid_csv") from exc
    if not rows:
        raise ValidationFailed("The file is empty.", code="invalid_csv")
    return [name.strip().casefold() for name in rows[0]], rows[1:]


@dataclass(frozen=True)
class _Columns:
    phone: int
    name: int | None
    language: int | None
    tags: int | None
    opted_out: int | None
    attributes: dict[str, int]


def _columns(header: list[str]) -> _Columns:
    """Where each field is; any other column is a contact attribute named by its header."""
    index = {name: position for position, name in enumerate(header) if name}

    def first(*names: str) -> int | None:
        return next((index[name] for name in names if name in index), None)

    phone = first(*PHONE_COLUMNS)
    if phone is None:
        raise ValidationFailed(
            "The first line must name the columns, including phone (or wa_id).", code="invalid_csv"
        )
    attributes = {name: position for name, position in index.items() if name not in KNOWN_COLUMNS}
    try:
        normalize_attributes(dict.fromkeys(attributes, ""))
    except ValueError as exc:
        raise ValidationFailed(f"Column names: {exc}", code="invalid_csv") from exc
    return _Columns(
        phone=phone,
        name=first("name", "nombre"),
        language=first("language", "idioma"),
        tags=first("tags", "etiquetas"),
        opted_out=first("opted_out"),
        attributes=attributes,
    )


@dataclass
class _Row:
    number: int
    wa_id: str
    name: str = ""
    language: str = ""
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    opted_out: bool = False


def _cell(record: list[str], position: int | None) -> str:
    if position is None or position >= len(record):
        return ""
    value = record[position].strip()
    # Our export quotes formula-like text; undo it so a round trip keeps the value.
    return value[1:] if value.startswith(_FORMULA_QUOTED) else value


def _row(number: int, record: list[str], columns: _Columns, region: str) -> _Row:
    row = _Row(number=number, wa_id=normalize_phone(_cell(record, columns.phone), region))
    row.name = _cell(record, columns.name)
    if len(row.name) > 255:
        raise ValueError("name has at most 255 characters.")
    row.language = _cell(record, columns.language)
    if len(row.language) > 8:
        raise ValueError("language has at most 8 characters.")
    if tags := _cell(record, columns.tags):
        row.tags = normalize_tags(tags.replace(";", "|").split("|"))
    flag = _cell(record, columns.opted_out).casefold()
    if flag not in _TRUE | _FALSE:
        raise ValueError(f"opted_out must be true or false, not {flag!r}.")
    row.opted_out = flag in _TRUE
    row.attributes = normalize_attributes(
        {key: _cell(record, position) for key, position in columns.attributes.items()}
    )
    return row


def _merge_tags(*lists: list[str]) -> list[str]:
    merged = normalize_tags([tag for tags in lists for tag in tags])
    if len(merged) > MAX_TAGS:
        raise ValueError(f"A contact has at most {MAX_TAGS} tags.")
    return merged


def contact_import_run(*, import_id: int) -> str:
    """Run a queued import (or one whose worker died: every write is idempotent, so it starts over)."""
    claimed = ContactImport.objects.filter(
        pk=import_id, status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
    ).update(
        status=ContactImport.Status.RUNNING,
        started_at=timezone.now(),
        processed_rows=0,
        created_count=0,
        updated_count=0,
        error_count=0,
        errors=[],
    )
    if not claimed:
        return "skipped"
    job = ContactImport.objects.get(pk=import_id)
    try:
        header, records = _parse(bytes(job.data))
        columns = _columns(header)
    except ValidationFailed as exc:
        _finish(job, failure=exc.message)
        return "failed"
    job.total_rows = len(records)
    ContactImport.objects.filter(pk=job.pk).update(total_rows=job.total_rows)
    size = max(1, int(settings.CAMPAIGNS_IMPORT_BATCH))
    for start in range(0, len(records), size):
        _batch(job, records[start : start + size], first_number=start + 2, columns=columns)
    _finish(job)
    return "done"


def _finish(job: ContactImport, failure: str = "") -> None:
    ContactImport.objects.filter(pk=job.pk).update(
        status=ContactImport.Status.FAILED if failure else ContactImport.Status.DONE,
        failure=failure[:255],
        finished_at=timezone.now(),
        data=b"",
    )


def _batch(job: ContactImport, records: list[list[str]], *, first_number: int, columns: _Columns) -> None:
    """Check a batch's rows, then write it in a few statements: read the known contacts, insert the
    new ones, update the changed ones, opt out whom the file opts out. Progress after each batch."""
    errors: list[dict[str, Any]] = []
    rows: dict[str, _Row] = {}
    for offset, record in enumerate(records):
        number = first_number + offset
        if not any(cell.strip() for cell in record):
            continue
        try:
            row = _row(number, record, columns, job.region)
            earlier = rows.get(row.wa_id)
            if earlier is not None:  # the same number twice in a batch: later cells win, tags add up
                row.tags = _merge_tags(earlier.tags, row.tags)
                row.attributes = {**earlier.attributes, **row.attributes}
                row.name, row.language = row.name or earlier.name, row.language or earlier.language
                row.opted_out = row.opted_out or earlier.opted_out
            rows[row.wa_id] = row
        except ValueError as exc:
            errors.append({"row": number, "error": str(exc)})
    created = updated = 0
    with transaction.atomic():
        known = _known(job.workspace_id, rows)
        missing = [row for wa_id, row in rows.items() if wa_id not in known]
        fresh: list[Contact] = []
        for row in missing:
            try:
                tags = _merge_tags(row.tags, job.tags)
            except ValueError as exc:
                errors.append({"row": row.number, "error": str(exc)})
                continue
            fresh.append(
                Contact(
                    workspace_id=job.workspace_id,
                    wa_id=row.wa_id,
                    name=row.name,
                    language=row.language,
                    tags=tags,
                    attributes=row.attributes,
                )
            )
        # A contact written meanwhile (a customer's first message) keeps its own values: the conflict is
        # skipped, and a second run of the file fills it in.
        Contact.objects.bulk_create(fresh, ignore_conflicts=True)
        created = len(fresh)
        changed: list[Contact] = []
        for wa_id, contact in known.items():
            try:
                if _apply(contact, rows[wa_id], job.tags):
                    changed.append(contact)
            except ValueError as exc:
                errors.append({"row": rows[wa_id].number, "error": str(exc)})
        now = timezone.now()
        for contact in changed:
            contact.updated_at = now
        Contact.objects.bulk_update(changed, ["name", "language", "tags", "attributes", "updated_at"])
        updated = len(changed)
        if new_opt_outs := {row.wa_id: row for row in missing if row.opted_out}:
            known.update(_known(job.workspace_id, new_opt_outs))  # the ids of the rows just inserted
        opting_out = [known[wa_id].pk for wa_id, row in rows.items() if row.opted_out and wa_id in known]
        contacts_opt_out_many(workspace_id=job.workspace_id, contact_ids=opting_out, source="import")
    kept = max(0, ContactImport.MAX_ERRORS - len(job.errors))
    job.errors = [*job.errors, *sorted(errors, key=lambda error: error["row"])[:kept]]
    ContactImport.objects.filter(pk=job.pk).update(
        processed_rows=F("processed_rows") + len(records),
        created_count=F("created_count") + created,
        updated_count=F("updated_count") + updated,
        error_count=F("error_count") + len(errors),
        errors=job.errors,
    )


def _known(workspace_id: int, rows: dict[str, _Row]) -> dict[str, Contact]:
    fields = ("pk", "workspace_id", "wa_id", "name", "language", "tags", "attributes", "opted_out")
    # `wa_id <> ''` lets PostgreSQL use the partial unique index (workspace, wa_id): it cannot prove that
    # from an IN list of more than 100 values.
    found = (
        Contact.objects.filter(workspace_id=workspace_id, wa_id__in=list(rows))
        .exclude(wa_id="")
        .only(*fields)
    )
    return {contact.wa_id: contact for contact in found}


def _apply(contact: Contact, row: _Row, import_tags: list[str]) -> bool:
    """Put the row's non-empty values on the contact; whether anything changed."""
    before = (contact.name, contact.language, list(contact.tags or []), dict(contact.attributes or {}))
    contact.name = row.name or contact.name
    contact.language = row.language or contact.language
    contact.tags = _merge_tags(list(contact.tags or []), row.tags, import_tags)
    contact.attributes = {**(contact.attributes or {}), **row.attributes}
    return before != (contact.name, contact.language, contact.tags, contact.attributes)
