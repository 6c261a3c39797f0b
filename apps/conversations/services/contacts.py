"""Contacts kept by staff: create, edit, delete, and CSV import and export."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from rest_framework import status

from apps.audit.services import audit_record
from apps.conversations.models import Contact
from apps.conversations.services.optout import contact_set_opt_out
from chatbot.exceptions import Conflict, DomainError, ValidationFailed

STAFF = "staff"
IMPORT = "import"
MAX_IMPORT_BYTES = 5 * 1024 * 1024
IMPORT_TOO_LARGE = f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB."
MAX_TAGS = 30
MAX_TAG_LENGTH = 40
EXPORT_COLUMNS = ["wa_id", "name", "language", "tags", "opted_out", "created_at"]
EDITABLE = frozenset({"wa_id", "bsuid", "name", "language", "tags", "attributes", "notes", "opted_out"})
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_VALUE = 255
MAX_ATTRIBUTE_NAME = 40
# Lowercase letters, digits and single underscores, from a letter: a name that reads the same in a
# segment, a template's variables and a CSV column.
ATTRIBUTE_NAME_PATTERN = r"^[a-z](_?[a-z0-9])*_?$"
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_NAME_PATTERN)
_WA_ID = re.compile(r"[0-9]{7,15}")  # ASCII digits only: \d also matches other scripts' digits
_TAG_SPLIT = re.compile(r"[|;]")
_TRUE = {"1", "true", "yes", "y", "x", "si", "sí"}
_FALSE = {"0", "false", "no", "n"}
# Spreadsheets run a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class PayloadTooLarge(DomainError):
    code = "too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def normalize_wa_id(value: str) -> str:
    """A phone number as WhatsApp writes it: 7 to 15 digits, no leading +. Raises ValueError."""
    value = value.strip()
    value = value.removeprefix("+")
    if not _WA_ID.fullmatch(value):
        raise ValueError("wa_id must be 7 to 15 digits (a leading + is allowed).")
    return value


def attribute_name_valid(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= MAX_ATTRIBUTE_NAME and bool(_ATTRIBUTE_NAME.fullmatch(name))


def normalize_phone(value: str, region: str | None = None) -> str:
    """A phone number as WhatsApp writes it (E.164 digits, no +), for every import. Raises ValueError.

    "+34 612 345 678" and "0034 612 345 678" carry their country code. Other text is first read as a
    national number of `region` ("612 345 678" with ES); when that is not a valid number (or there is no
    region), as digits that start with their country code, as a wa_id is written ("34612345678").
    """
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    readings: list[tuple[str, str | None]] = [(text, None)] if text.startswith("+") else [("+" + text, None)]
    if region and not text.startswith("+"):
        readings.insert(0, (text, region))
    for candidate, candidate_region in readings:
        try:
            number = phonenumbers.parse(candidate, candidate_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164).removeprefix("+")
    where = f"region {region} when there is no +country code" if region else "with its +country code"
    raise ValueError(f"{value.strip()!r} is not a valid phone number ({where}).")


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Trimmed, without blanks or repeats (first spelling wins, compared without case). Raises ValueError."""
    seen: dict[str, str] = {}
    for tag in tags:
        tag = tag.strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"A tag has at most {MAX_TAG_LENGTH} characters.")
        seen.setdefault(tag.casefold(), tag)
    if len(seen) > MAX_TAGS:
        raise ValueError(f"A contact has at most {MAX_TAGS} tags.")
    return list(seen.values())


def normalize_attributes(attributes: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """Named values of a contact (segments filter on them, templates fill variables from them): keys are
    lowercase identifiers, values short scalars; an empty value removes the key. Raises ValueError."""
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValueError(f"A contact has at most {MAX_ATTRIBUTES} attributes.")
    clean: dict[str, str | int | float | bool] = {}
    for key, value in attributes.items():
        if not attribute_name_valid(key):
            raise ValueError(
                f"Attribute name {key!r}: lowercase letters, digits and single _, starting with a letter "
                f"(at most {MAX_ATTRIBUTE_NAME})."
            )
        if isinstance(value, str):
            if len(value) > MAX_ATTRIBUTE_VALUE:  # as sent, as the API's schema says
                raise ValueError(f"Attribute {key}: at most {MAX_ATTRIBUTE_VALUE} characters.")
            value = value.strip()
            if not value:
                continue
        elif value is None:
            continue
        elif not isinstance(value, int | float | bool):
            raise ValueError(f"Attribute {key}: a text, a number or true/false.")
        clean[key] = value
    return clean


def _duplicate() -> Conflict:
    return Conflict("Another contact of this workspace has this wa_id or bsuid.", code="duplicate_contact")


def _check_has_id(contact: Contact) -> None:
    if not contact.wa_id and not contact.bsuid:
        raise ValidationFailed("A contact needs a wa_id or a bsuid.", code="contact_without_id")


def contact_create(
    *,
    workspace: Any,
    wa_id: str = "",
    bsuid: str = "",
    name: str = "",
    language: str = "",
    tags: Iterable[str] = (),
    attributes: Mapping[str, Any] | None = None,
    notes: str = "",
    opted_out: bool = False,
    opt_out_source: str = STAFF,
) -> Contact:
    contact = Contact(
        workspace=workspace,
        wa_id=wa_id,
        bsuid=bsuid,
        name=name,
        language=language,
        tags=list(tags),
        attributes=dict(attributes or {}),
        notes=notes,
    )
    _check_has_id(contact)
    try:
        with transaction.atomic():
            contact.save()
            if opted_out:
                contact_set_opt_out(contact=contact, opted_out=True, source=opt_out_source)
    except IntegrityError as exc:
        raise _duplicate() from exc
    if opted_out:
        contact.refresh_from_db()
    return contact


def contact_update(*, contact: Contact, data: Mapping[str, Any], opt_out_source: str = STAFF) -> Contact:
    """Change the given fields only; a change of `opted_out` is recorded with its source and time."""
    unknown = set(data) - EDITABLE
    if unknown:
        raise ValueError(f"not editable contact fields: {sorted(unknown)}")
    fields = [key for key, value in data.items() if key != "opted_out" and getattr(contact, key) != value]
    for key in fields:
        setattr(contact, key, data[key])
    _check_has_id(contact)
    try:
        with transaction.atomic():
            if fields:
                contact.save(update_fields=[*fields, "updated_at"])
            if "opted_out" in data:
                contact_set_opt_out(contact=contact, opted_out=bool(data["opted_out"]), source=opt_out_source)
    except IntegrityError as exc:
        raise _duplicate() from exc
    contact.refresh_from_db()
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, actor_id: int | None) -> None:
    """Forget the contact with their conversations and messages. The audit entry names only the id:
    the person asked to be forgotten, so their number stays out of the log too."""
    audit_record(
        workspace_id=contact.workspace_id,
        actor_id=actor_id,
        action="contact.delete",
        target=("conversations.contact", contact.pk),
    )
    contact.delete()


# --- CSV ----------------------------------------------------------------------------------
@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _cell(value: str | None) -> str:
    value = (value or "").strip()
    # Undo the quote our export puts before formula-like text, so a round trip keeps the value.
    if value.startswith("'") and value[1:2] in _FORMULA_START:
        return value[1:]
    return value


def _parse_flag(value: str) -> bool:
    lowered = value.casefold()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"opted_out must be true or false, not '{value}'.")


def _import_values(row: Mapping[str, str | None], columns: set[str]) -> tuple[str, dict[str, Any]]:
    """The row's wa_id and the fields its non-empty cells set. Raises ValueError."""
    wa_id = normalize_phone(_cell(row.get("wa_id")))
    values: dict[str, Any] = {}
    if "name" in columns and (name := _cell(row.get("name"))):
        if len(name) > 255:
            raise ValueError("name has at most 255 characters.")
        values["name"] = name
    if "language" in columns and (language := _cell(row.get("language"))):
        if len(language) > 8:
            raise ValueError("language has at most 8 characters.")
        values["language"] = language
    if "tags" in columns and (tags := _cell(row.get("tags"))):
        values["tags"] = normalize_tags(_TAG_SPLIT.split(tags))
    if "opted_out" in columns and (flag := _cell(row.get("opted_out"))):
        values["opted_out"] = _parse_flag(flag)
    return wa_id, values


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("The file must be UTF-8 encoded CSV.", code="invalid_csv") from exc


def _records(text: str) -> tuple[list[str], Iterator[tuple[int, list[str] | csv.Error]]]:
    """The column names, and each later record with its spreadsheet row number (header = row 1)."""
    header_line = text.split("\n", 1)[0]
    # Spreadsheets in many locales save with ";" between columns.
    delimiter = ";" if ";" in header_line and "," not in header_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().casefold() for name in next(reader, [])]
    if "wa_id" not in header:
        raise ValidationFailed("The first line must name the columns, including wa_id.", code="invalid_csv")

    def numbered() -> Iterator[tuple[int, list[str] | csv.Error]]:
        number = 1
        while True:
            number += 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # one malformed record (e.g. an oversized cell); the next may be fine
                yield number, exc
                continue
            if any(cell.strip() for cell in record):
                yield number, record

    return header, numbered()


def contacts_import_csv(*, workspace: Any, data: bytes) -> ImportReport:
    """Create or update contacts by wa_id from CSV with columns wa_id,name,language,tags,opted_out.

    A wa_id is a phone number with its country code, spelt any way ("+34 612 345 678", "0034...",
    "34612345678"; see `normalize_phone`). Rows are numbered as in a spreadsheet (the header is row 1). Each row is saved on its own, so
    a bad row is reported and never stops the others. Empty cells leave an existing contact's value
    as it is. Tags are separated by `|` or `;`. An import may opt contacts out but never opts
    anyone back in: that stays a deliberate edit of one contact.
    """
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(IMPORT_TOO_LARGE)
    header, records = _records(_decode(data))
    columns = set(header)
    report = ImportReport()
    for number, record in records:
        try:
            if isinstance(record, csv.Error):
                raise ValueError(f"Not valid CSV: {record}")
            wa_id, values = _import_values(dict(zip(header, record, strict=False)), columns)
            _import_row(workspace=workspace, wa_id=wa_id, values=values, report=report)
        except (ValueError, DomainError) as exc:
            message = exc.message if isinstance(exc, DomainError) else str(exc)
            report.errors.append({"row": number, "error": message})
    return report


def _import_row(*, workspace: Any, wa_id: str, values: dict[str, Any], report: ImportReport) -> None:
    opt_out = values.pop("opted_out", None)
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(workspace=workspace, wa_id=wa_id).first()
        if contact is None:
            contact_create(
                workspace=workspace, wa_id=wa_id, opted_out=bool(opt_out), opt_out_source=IMPORT, **values
            )
            report.created += 1
            return
        if opt_out:
            values["opted_out"] = True
        contact_update(contact=contact, data=values, opt_out_source=IMPORT)
        report.updated += 1


def _safe(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def contacts_export_rows(*, contacts: QuerySet[Contact]) -> Iterator[list[str]]:
    """The header, then one row per contact (oldest first), read in chunks so any size streams."""
    yield EXPORT_COLUMNS
    for contact in contacts.order_by("pk").iterator(chunk_size=2000):
        yield [
            contact.wa_id,
            _safe(contact.name),
            _safe(contact.language),
            _safe("|".join(contact.tags or [])),
            "true" if contact.opted_out else "false",
            contact.created_at.isoformat(),
        ]
