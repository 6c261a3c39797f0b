"""Writes for the assistant: the business profile, its knowledge (entries, chunks, imports), settings.

Every knowledge write bumps `BusinessProfile.knowledge_version` in the same transaction, which is what
tells `knowledge.retrieve` to rebuild its index; every profile edit bumps `BusinessProfile.version`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePath
from typing import Any
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F, Model
from django.utils import timezone
from rest_framework import status

from apps.accounts.models import Workspace
from apps.assistant import knowledge
from apps.assistant.models import AssistantSettings, BusinessProfile, KnowledgeChunk, KnowledgeEntry
from apps.audit.services import audit_record
from chatbot.exceptions import DomainError, NotFound, ValidationFailed

MAX_IMPORT_BYTES = 5 * 1024 * 1024
CHUNK_MIN = 600
CHUNK_MAX = 900
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PROFILE_FIELDS = frozenset(
    {
        "name",
        "description",
        "tone",
        "languages",
        "opening_hours",
        "timezone",
        "address",
        "handoff_policy",
        "custom_instructions",
        "disclosure_text",
    }
)
KNOWLEDGE_FIELDS = frozenset({"kind", "title", "content", "language", "source", "is_active"})
_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]|24:00")  # ASCII digits only
_LANGUAGE = re.compile(r"[a-z]{2}")


class PayloadTooLarge(DomainError):
    code = "too_large"
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE


def _full_clean(instance: Model, *, exclude: list[str]) -> None:
    try:
        instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except DjangoValidationError as exc:
        raise ValidationFailed("The data is not valid.", details=exc.message_dict) from exc


# --- business profile ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone_validate(value: Any) -> str:
    if not isinstance(value, str) or value not in _time_zones():
        raise ValidationFailed("Unknown time zone.", details={"timezone": ["Unknown time zone."]})
    return value


def languages_validate(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(code, str) for code in value):
        raise ValidationFailed("Languages must be a list of codes.", details={"languages": ["Not a list."]})
    codes = list(dict.fromkeys(code.strip().lower() for code in value))
    if len(codes) > 10 or not all(_LANGUAGE.fullmatch(code) for code in codes):
        message = 'Up to 10 two-letter language codes, such as ["es", "en"].'
        raise ValidationFailed(message, details={"languages": [message]})
    return codes


def _day_ranges(day: str, ranges: Any) -> tuple[list[list[str]], list[str]]:
    if not isinstance(ranges, list):
        return [], [f'{day}: a list of ["HH:MM", "HH:MM"] ranges is expected.']
    parsed: list[list[str]] = []
    problems: list[str] = []
    for span in ranges:
        if not (
            isinstance(span, list | tuple)
            and len(span) == 2
            and all(isinstance(t, str) and _TIME.fullmatch(t) for t in span)
        ):
            problems.append(f'{day}: {span!r} is not a ["HH:MM", "HH:MM"] range.')
        elif span[0] >= span[1]:
            problems.append(f"{day}: {span[0]}-{span[1]} must end after it starts.")
        else:
            parsed.append([span[0], span[1]])
    parsed.sort()
    for earlier, later in zip(parsed, parsed[1:], strict=False):
        if later[0] < earlier[1]:
            problems.append(f"{day}: {earlier[0]}-{earlier[1]} and {later[0]}-{later[1]} overlap.")
    return parsed, problems


def opening_hours_validate(value: Any) -> dict[str, list[list[str]]]:
    """`{"mon": [["09:00", "14:00"], ["16:00", "20:00"]], ..., "sun": []}`, ranges sorted.

    Days are mon..sun; a day left out of a non-empty table is closed. An empty table means the hours
    are not known (the assistant then does not state any). A range may end at 24:00.
    """
    if not isinstance(value, dict):
        raise ValidationFailed(
            "Opening hours must be an object.", details={"opening_hours": ["Not an object."]}
        )
    if not value:
        return {}
    problems = [f"Unknown day '{day}': use {', '.join(DAYS)}." for day in value if day not in DAYS]
    hours: dict[str, list[list[str]]] = {}
    for day in DAYS:
        ranges, day_problems = _day_ranges(day, value.get(day, []))
        hours[day] = ranges
        problems += day_problems
    if problems:
        raise ValidationFailed("The opening hours are not valid.", details={"opening_hours": problems})
    return hours


def profile_get_or_create(*, workspace_id: int) -> BusinessProfile:
    """The workspace's profile; a new one starts from the workspace's name, language and time zone."""
    profile = BusinessProfile.objects.filter(workspace_id=workspace_id).first()
    if profile is not None:
        return profile
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        raise NotFound("No such workspace.")
    profile, _ = BusinessProfile.objects.get_or_create(
        workspace_id=workspace_id,
        defaults={
            "name": workspace.name,
            "timezone": workspace.timezone,
            "languages": [workspace.default_language],
        },
    )
    return profile


@transaction.atomic
def profile_update(*, workspace_id: int, **fields: Any) -> BusinessProfile:
    """Set the given profile fields (others keep their value) and bump `version`."""
    unknown = sorted(set(fields) - PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Not profile fields: {', '.join(unknown)}.")
    if "opening_hours" in fields:
        fields["opening_hours"] = opening_hours_validate(fields["opening_hours"])
    if "timezone" in fields:
        fields["timezone"] = timezone_validate(fields["timezone"])
    if "languages" in fields:
        fields["languages"] = languages_validate(fields["languages"])
    profile = profile_get_or_create(workspace_id=workspace_id)
    if not fields:
        return profile
    for name, value in fields.items():
        setattr(profile, name, value.strip() if isinstance(value, str) else value)
    _full_clean(profile, exclude=["workspace"])
    profile.version = F("version") + 1
    # Only these columns: a knowledge edit committing meanwhile keeps its knowledge_version bump.
    profile.save(update_fields=[*fields, "version", "updated_at"])
    profile.refresh_from_db()
    return profile


def assistant_settings_get_or_create(*, workspace_id: int) -> AssistantSettings:
    settings_row, _ = AssistantSettings.objects.get_or_create(workspace_id=workspace_id)
    return settings_row


# How replies are produced, with the bounds that keep a workspace from hurting itself or the workers
# (a 10-minute budget would hold a worker thread; 0 tokens would send empty replies).
ASSISTANT_SETTING_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "max_tokens": (16, 8192),
    "provider_timeout_seconds": (1.0, 120.0),
    "reply_budget_seconds": (2.0, 120.0),
    "cache_ttl_seconds": (0, 7 * 24 * 3600),
    "debounce_seconds": (0.0, 30.0),
    "history_token_budget": (0, 32_000),
}
ASSISTANT_SETTING_FIELDS = frozenset({"enabled", *ASSISTANT_SETTING_BOUNDS})


@transaction.atomic
def assistant_settings_update(*, workspace_id: int, actor_id: int | None, **fields: Any) -> AssistantSettings:
    """Set the given fields (others keep their value). Answers already in the reply cache were made
    with the old temperature and length; they expire with their TTL."""
    unknown = sorted(set(fields) - ASSISTANT_SETTING_FIELDS)
    if unknown:
        raise ValidationFailed(f"Not assistant settings: {', '.join(unknown)}.")
    problems = {
        name: [f"Between {low:g} and {high:g}."]
        for name, (low, high) in ASSISTANT_SETTING_BOUNDS.items()
        if name in fields and not low <= fields[name] <= high
    }
    if problems:
        raise ValidationFailed("Some assistant settings are out of range.", details=problems)
    row = AssistantSettings.objects.select_for_update().get(
        pk=assistant_settings_get_or_create(workspace_id=workspace_id).pk
    )
    for name, value in fields.items():
        setattr(row, name, value)
    if fields:
        row.save(update_fields=list(fields))
    audit_record(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action="assistant.update",
        target=("assistant.assistantsettings", workspace_id),
        details=fields,
    )
    return row


# --- chunking ------------------------------------------------------------------------------------
_PARAGRAPH_END = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+|\n\s*")
_SPACE = re.compile(r"\s+")


def _split_after(text: str, pattern: re.Pattern[str]) -> list[str]:
    """`text` cut right after each match of `pattern`; the pieces join back to `text`."""
    pieces: list[str] = []
    start = 0
    for match in pattern.finditer(text):
        if start < match.end() < len(text):
            pieces.append(text[start : match.end()])
            start = match.end()
    pieces.append(text[start:])
    return [piece for piece in pieces if piece]


def _hard_split(text: str, max_size: int) -> list[str]:
    """A sentence longer than `max_size`: cut between words, or inside a word longer than that."""
    parts: list[str] = []
    current = ""
    for word in _split_after(text, _SPACE):
        while len(word) > max_size:
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:max_size])
            word = word[max_size:]
        if current and len(current) + len(word) > max_size:
            parts.append(current)
            current = ""
        current += word
    if current:
        parts.append(current)
    return parts


def _pieces(text: str, max_size: int) -> Iterator[tuple[str, bool]]:
    """Sentences (or parts of over-long ones), each flagged when it ends a paragraph."""
    for paragraph in _split_after(text, _PARAGRAPH_END):
        sentences = [
            part
            for sentence in _split_after(paragraph, _SENTENCE_END)
            for part in (_hard_split(sentence, max_size) if len(sentence) > max_size else [sentence])
        ]
        for position, sentence in enumerate(sentences):
            yield sentence, position == len(sentences) - 1


def chunk_text(text: str, *, min_size: int = CHUNK_MIN, max_size: int = CHUNK_MAX) -> list[str]:
    """Cut a document into chunks of about `min_size`..`max_size` characters.

    A chunk ends at the first paragraph end past `min_size`, else at the last sentence end that keeps
    it within `max_size`; a sentence longer than that is cut between words. Nothing is dropped or
    changed: the chunks joined are exactly `text`, whitespace included.
    """
    chunks: list[str] = []
    current = ""
    for piece, ends_paragraph in _pieces(text, max_size):
        if current.strip() and len(current) + len(piece) > max_size:
            chunks.append(current)
            current = ""
        current += piece
        if ends_paragraph and len(current) >= min_size:
            chunks.append(current)
            current = ""
    if current:
        if chunks and (not current.strip() or len(chunks[-1]) + len(current) <= max_size):
            chunks[-1] += current
        else:
            chunks.append(current)
    return chunks


# --- knowledge -----------------------------------------------------------------------------------
def _knowledge_bump(workspace_id: int) -> int:
    profile = profile_get_or_create(workspace_id=workspace_id)
    BusinessProfile.objects.filter(pk=profile.pk).update(knowledge_version=F("knowledge_version") + 1)
    return int(
        BusinessProfile.objects.filter(pk=profile.pk).values_list("knowledge_version", flat=True).get()
    )


def _entry_clean(entry: KnowledgeEntry) -> None:
    entry.title = " ".join(entry.title.split())
    entry.language = entry.language.strip().lower()
    entry.source = entry.source.strip()
    if entry.kind == KnowledgeEntry.Kind.FAQ:
        entry.content = entry.content.strip()
    problems: dict[str, list[str]] = {}
    if not entry.content.strip():
        problems["content"] = ["This field may not be blank."]
    if entry.language and not _LANGUAGE.fullmatch(entry.language):
        problems["language"] = ["A two-letter code such as es or en."]
    if problems:
        raise ValidationFailed("The entry is not valid.", details=problems)
    _full_clean(entry, exclude=["workspace"])


def _chunks_of(entry: KnowledgeEntry) -> list[str]:
    if entry.kind == KnowledgeEntry.Kind.FAQ:
        return [entry.content]
    return chunk_text(entry.content)


def _chunks_write(entries: list[KnowledgeEntry]) -> None:
    KnowledgeChunk.objects.filter(entry__in=[entry.pk for entry in entries]).delete()
    KnowledgeChunk.objects.bulk_create(
        [
            KnowledgeChunk(
                entry=entry,
                workspace_id=entry.workspace_id,
                ordinal=ordinal,
                text=text,
                terms=knowledge.stored_terms(
                    title=entry.title, text=text, kind=entry.kind, language=entry.language
                ),
                terms_version=knowledge.TERMS_VERSION,
            )
            for entry in entries
            for ordinal, text in enumerate(_chunks_of(entry))
        ],
        batch_size=500,
    )


@transaction.atomic
def knowledge_save(*, entry: KnowledgeEntry) -> KnowledgeEntry:
    """Validate and save `entry` (new or changed), rewrite its chunks and bump knowledge_version.

    An FAQ is one chunk (its answer); a document is cut by `chunk_text`.
    """
    _entry_clean(entry)
    entry.save()
    _chunks_write([entry])
    _knowledge_bump(entry.workspace_id)
    return entry


def knowledge_create(
    *,
    workspace_id: int,
    title: str,
    content: str,
    kind: str = KnowledgeEntry.Kind.FAQ,
    language: str = "",
    source: str = "",
    is_active: bool = True,
) -> KnowledgeEntry:
    entry = KnowledgeEntry(
        workspace_id=workspace_id,
        kind=kind,
        title=title,
        content=content,
        language=language,
        source=source,
        is_active=is_active,
    )
    return knowledge_save(entry=entry)


def knowledge_update(*, entry: KnowledgeEntry, **fields: Any) -> KnowledgeEntry:
    unknown = sorted(set(fields) - KNOWLEDGE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Not knowledge fields: {', '.join(unknown)}.")
    for name, value in fields.items():
        setattr(entry, name, value)
    return knowledge_save(entry=entry)


@transaction.atomic
def knowledge_delete(*, entry: KnowledgeEntry, actor_id: int | None) -> None:
    workspace_id = entry.workspace_id
    audit_record(
        workspace_id=workspace_id,
        actor_id=actor_id,
        action="knowledge.delete",
        target=("assistant.knowledgeentry", entry.pk),
        details={"title": entry.title[:200]},
    )
    entry.delete()
    _knowledge_bump(workspace_id)


# --- import --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportRowError:
    row: int  # CSV: spreadsheet row (the header is row 1); Markdown and text: line number
    message: str


@dataclass
class ImportReport:
    format: str
    created: int = 0
    updated: int = 0  # FAQs whose question existed already: their answer was replaced
    replaced: int = 0  # documents of an earlier import of the same file, removed
    errors: list[ImportRowError] = field(default_factory=list)
    knowledge_version: int = 0


@dataclass(frozen=True)
class _Item:
    row: int
    kind: str
    title: str
    content: str
    language: str = ""


def _question_key(question: str) -> str:
    return " ".join(question.casefold().split())


def _decode(content: bytes) -> str:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheets on Windows save Spanish text as cp1252 unless told otherwise.
        text = content.decode("cp1252", errors="replace")
    if "\x00" in text:
        raise ValidationFailed("This is not a text file.", code="invalid_file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


_CSV_COLUMNS = {
    "question": "question",
    "pregunta": "question",
    "answer": "answer",
    "respuesta": "answer",
    "language": "language",
    "idioma": "language",
    "lang": "language",
}


# The import's example file: one row per language, in the columns `_CSV_COLUMNS` reads.
IMPORT_EXAMPLE_ROWS = [
    ("¿A qué hora abrís?", "De lunes a viernes, de 9:00 a 14:00 y de 16:00 a 20:00.", "es"),
    ("¿Hacéis envíos a domicilio?", "Sí, en toda la ciudad; el envío cuesta 3 €.", "es"),
    ("What time do you open?", "Monday to Friday, 9:00-14:00 and 16:00-20:00.", "en"),
    ("Do you deliver?", "Yes, anywhere in the city; delivery costs 3 €.", "en"),
]


def knowledge_import_example() -> str:
    """A CSV the import accepts as is: the header `question,answer,language` and a row per language."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["question", "answer", "language"])
    writer.writerows(IMPORT_EXAMPLE_ROWS)
    return out.getvalue()


def _parse_csv(text: str, *, name: str) -> tuple[list[_Item], list[ImportRowError]]:
    header_line = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=header_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [_CSV_COLUMNS.get(cell.strip().casefold(), "") for cell in next(reader, [])]
    except csv.Error as exc:
        raise ValidationFailed(f"The header is not valid CSV: {exc}", code="invalid_csv") from exc
    if "question" not in header or "answer" not in header:
        raise ValidationFailed(
            "The first line must name the columns question and answer (and optionally language).",
            code="invalid_csv",
        )
    items: list[_Item] = []
    errors: list[ImportRowError] = []
    row = 1
    while True:
        row += 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # one malformed record; the reader goes on with the next line
            errors.append(ImportRowError(row, f"Not valid CSV: {exc}"))
            continue
        if not any(cell.strip() for cell in record):
            continue
        values = {column: cell for column, cell in zip(header, record, strict=False) if column}
        items.append(
            _Item(
                row=row,
                kind=KnowledgeEntry.Kind.FAQ,
                title=values.get("question", ""),
                content=values.get("answer", ""),
                language=values.get("language", ""),
            )
        )
    return items, errors


_QUESTION = re.compile(r"\s*(?:q|p|question|pregunta)\s*:\s?(.*)", re.IGNORECASE)
_ANSWER = re.compile(r"\s*(?:a|r|answer|respuesta)\s*:\s?(.*)", re.IGNORECASE)
_HEADING = re.compile(r"(#{1,2})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r"\s*(```|~~~)")


def _is_qa(lines: list[tuple[int, str]]) -> bool:
    """Text that opens with a Q: (or a stray A:) line and has at least one Q: line."""
    first = next((line for _, line in lines if line.strip()), "")
    return bool(_QUESTION.fullmatch(first) or _ANSWER.fullmatch(first)) and any(
        _QUESTION.fullmatch(line) for _, line in lines
    )


def _parse_qa(lines: list[tuple[int, str]]) -> tuple[list[_Item], list[ImportRowError]]:
    """`Q: ...` / `A: ...` pairs (also P:/R:); lines that follow continue the question or answer."""
    items: list[_Item] = []
    errors: list[ImportRowError] = []
    question: list[str] = []
    answer: list[str] | None = None
    start = 0
    orphan = False

    def finish() -> None:
        if not question:
            return
        if answer is None or not "\n".join(answer).strip():
            errors.append(ImportRowError(start, "A question without an answer."))
        else:
            items.append(
                _Item(start, KnowledgeEntry.Kind.FAQ, " ".join(question).strip(), "\n".join(answer).strip())
            )

    for number, line in lines:
        if q_match := _QUESTION.fullmatch(line):
            finish()
            question, answer, start, orphan = [q_match.group(1)], None, number, False
        elif (a_match := _ANSWER.fullmatch(line)) and answer is None:
            if not question:
                errors.append(ImportRowError(number, "An answer without a question."))
                orphan = True
                continue
            answer = [a_match.group(1)]
        elif orphan:
            continue
        elif answer is not None:
            answer.append(line)
        elif question and line.strip():
            question.append(line.strip())
    finish()
    return items, errors


@dataclass
class _Section:
    line: int
    level: int
    title: str
    lines: list[tuple[int, str]] = field(default_factory=list)


def _sections(text: str, *, name: str) -> list[_Section]:
    sections = [_Section(line=1, level=0, title=name)]
    in_fence = False
    for number, line in enumerate(text.split("\n"), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.fullmatch(line)
        if heading:
            sections.append(_Section(line=number, level=len(heading.group(1)), title=heading.group(2)))
        else:
            sections[-1].lines.append((number, line))
    return sections


def _parse_markdown(text: str, *, name: str) -> tuple[list[_Item], list[ImportRowError]]:
    """Each `#` or `##` heading with its section is a document; a section of Q:/A: pairs gives FAQs.

    Text before the first heading is a document titled after the file. A heading with no text of its
    own is skipped when deeper headings follow (it only titles them), and reported otherwise.
    """
    items: list[_Item] = []
    errors: list[ImportRowError] = []
    sections = _sections(text, name=name)
    for position, section in enumerate(sections):
        if _is_qa(section.lines):
            qa_items, qa_errors = _parse_qa(section.lines)
            items += qa_items
            errors += qa_errors
            continue
        body = "\n".join(line for _, line in section.lines).strip("\n")
        if body.strip():
            items.append(_Item(section.line, KnowledgeEntry.Kind.DOCUMENT, section.title, body))
            continue
        following = sections[position + 1] if position + 1 < len(sections) else None
        if section.level and not (following and following.level > section.level):
            errors.append(ImportRowError(section.line, f"The section '{section.title}' has no text."))
    return items, errors


def _parse_text(text: str, *, name: str) -> tuple[list[_Item], list[ImportRowError]]:
    lines = list(enumerate(text.split("\n"), start=1))
    if _is_qa(lines):
        return _parse_qa(lines)
    return [_Item(1, KnowledgeEntry.Kind.DOCUMENT, name, text.strip("\n"))], []


_PARSERS = {
    ".csv": ("csv", _parse_csv),
    ".md": ("markdown", _parse_markdown),
    ".markdown": ("markdown", _parse_markdown),
    ".txt": ("text", _parse_text),
}


def _title_from(filename: str) -> str:
    stem = PurePath(filename).stem
    title = " ".join(stem.replace("_", " ").replace("-", " ").split())
    return (title[:1].upper() + title[1:]) or "Document"


def _checked(item: _Item, *, workspace_id: int, source: str) -> KnowledgeEntry:
    entry = KnowledgeEntry(
        workspace_id=workspace_id,
        kind=item.kind,
        title=item.title,
        content=item.content,
        language=item.language,
        source=source,
    )
    if not entry.title.strip():
        raise ValidationFailed("The question is empty." if item.kind == "faq" else "The title is empty.")
    if not entry.content.strip():
        raise ValidationFailed("The answer is empty." if item.kind == "faq" else "The text is empty.")
    try:
        _entry_clean(entry)
    except ValidationFailed as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        raise ValidationFailed(
            "; ".join(f"{name}: {' '.join(map(str, messages))}" for name, messages in details.items())
            or exc.message
        ) from exc
    return entry


@transaction.atomic
def knowledge_import(*, workspace_id: int, filename: str, content: bytes) -> ImportReport:
    """Import FAQs and documents from a .csv, .md or .txt file; one knowledge_version bump in all.

    - CSV: columns question,answer[,language] (or pregunta,respuesta[,idioma]); one FAQ per row.
      An FAQ whose question (ignoring case and spacing) exists already gets the new answer.
    - Markdown: see `_parse_markdown`. Plain text: one document titled after the file, or FAQs
      when written as Q:/A: pairs.
    Documents replace those an earlier import of a file with the same name brought. A bad row is
    reported (row or line number and why) and skipped; the good rows are saved all the same.
    """
    if len(content) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    source = PurePath(filename).name[:255]
    kind_and_parser = _PARSERS.get(PurePath(filename).suffix.lower())
    if kind_and_parser is None:
        raise ValidationFailed("Import a .csv, .md or .txt file.", code="unsupported_file")
    file_format, parse = kind_and_parser
    text = _decode(content)
    if not text.strip():
        raise ValidationFailed("The file is empty.", code="empty_file")
    items, errors = parse(text, name=_title_from(filename))
    report = ImportReport(format=file_format, errors=errors)

    existing = {
        _question_key(entry.title): entry
        for entry in KnowledgeEntry.objects.filter(workspace_id=workspace_id, kind=KnowledgeEntry.Kind.FAQ)
    }
    seen: dict[str, int] = {}
    new: list[KnowledgeEntry] = []
    changed: list[KnowledgeEntry] = []
    for item in items:
        try:
            entry = _checked(item, workspace_id=workspace_id, source=source)
        except ValidationFailed as exc:
            report.errors.append(ImportRowError(item.row, exc.message))
            continue
        if entry.kind == KnowledgeEntry.Kind.FAQ:
            key = _question_key(entry.title)
            if key in seen:
                report.errors.append(ImportRowError(item.row, f"The same question as row {seen[key]}."))
                continue
            seen[key] = item.row
            if key in existing:
                current = existing[key]
                language = entry.language or current.language
                if (current.content, current.language, current.source) != (entry.content, language, source):
                    current.content, current.language, current.source = entry.content, language, source
                    changed.append(current)
                continue  # an unchanged FAQ keeps its chunks (and the index its postings)
        new.append(entry)

    if any(entry.kind == KnowledgeEntry.Kind.DOCUMENT for entry in new):
        _, deleted = KnowledgeEntry.objects.filter(
            workspace_id=workspace_id, kind=KnowledgeEntry.Kind.DOCUMENT, source=source
        ).delete()
        report.replaced = deleted.get(KnowledgeEntry._meta.label, 0)
    now = timezone.now()
    for entry in changed:
        entry.updated_at = now  # bulk_update does not apply auto_now
    KnowledgeEntry.objects.bulk_update(
        changed, ["content", "language", "source", "updated_at"], batch_size=500
    )
    created = KnowledgeEntry.objects.bulk_create(new, batch_size=500)
    _chunks_write([*changed, *created])
    report.created, report.updated = len(created), len(changed)
    report.errors.sort(key=lambda error: error.row)
    if created or changed or report.replaced:
        report.knowledge_version = _knowledge_bump(workspace_id)
    else:
        report.knowledge_version = profile_get_or_create(workspace_id=workspace_id).knowledge_version
    return report
