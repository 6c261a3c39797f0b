from __future__ import annotations

import random

import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import services
from apps.assistant.models import AssistantSettings, BusinessProfile, KnowledgeChunk, KnowledgeEntry
from apps.assistant.services import ImportRowError
from chatbot.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db


def knowledge_version(workspace):
    return BusinessProfile.objects.get(workspace=workspace).knowledge_version


def entries(workspace):
    return list(
        KnowledgeEntry.objects.filter(workspace=workspace)
        .order_by("pk")
        .values_list("kind", "title", "content", "language", "source")
    )


# --- profile ----------------------------------------------------------------------------------------
def test_a_new_profile_starts_from_the_workspace_and_is_created_once():
    workspace = WorkspaceFactory(name="Panadería Luna", timezone="Europe/Madrid", default_language="es")

    first = services.profile_get_or_create(workspace_id=workspace.pk)
    again = services.profile_get_or_create(workspace_id=workspace.pk)

    assert first.pk == again.pk
    assert (first.name, first.timezone, first.languages) == ("Panadería Luna", "Europe/Madrid", ["es"])
    assert (first.version, first.knowledge_version) == (1, 1)
    assert BusinessProfile.objects.filter(workspace=workspace).count() == 1


def test_profile_update_sets_the_fields_and_bumps_only_the_version():
    workspace = WorkspaceFactory()

    profile = services.profile_update(
        workspace_id=workspace.pk,
        name="  Luna  ",
        opening_hours={"sat": [["16:00", "20:00"], ["09:00", "14:00"]], "mon": [["09:00", "24:00"]]},
        timezone="America/Bogota",
        languages=["ES", "en", "es"],
    )

    assert profile.name == "Luna"
    assert profile.opening_hours == {
        "mon": [["09:00", "24:00"]],
        "tue": [],
        "wed": [],
        "thu": [],
        "fri": [],
        "sat": [["09:00", "14:00"], ["16:00", "20:00"]],
        "sun": [],
    }
    assert (profile.timezone, profile.languages) == ("America/Bogota", ["es", "en"])
    assert (profile.version, profile.knowledge_version) == (2, 1)
    assert services.profile_update(workspace_id=workspace.pk, tone="formal").version == 3


@pytest.mark.parametrize(
    ("hours", "problem"),
    [
        ({"monday": [["09:00", "18:00"]]}, "Unknown day 'monday': use mon, tue, wed, thu, fri, sat, sun."),
        ({"mon": [["9:00", "18:00"]]}, "mon: ['9:00', '18:00'] is not a [\"HH:MM\", \"HH:MM\"] range."),
        ({"tue": [["18:00", "09:00"]]}, "tue: 18:00-09:00 must end after it starts."),
        ({"wed": [["09:00", "14:00"], ["13:00", "18:00"]]}, "wed: 09:00-14:00 and 13:00-18:00 overlap."),
        ({"thu": "09:00-18:00"}, 'thu: a list of ["HH:MM", "HH:MM"] ranges is expected.'),
        ({"fri": [["09:00", "25:00"]]}, "fri: ['09:00', '25:00'] is not a [\"HH:MM\", \"HH:MM\"] range."),
        ({"sat": [["٠٩:00", "12:00"]]}, "sat: ['٠٩:00', '12:00'] is not a [\"HH:MM\", \"HH:MM\"] range."),
    ],
)
def test_bad_opening_hours_are_refused_and_nothing_changes(hours, problem):
    workspace = WorkspaceFactory()

    with pytest.raises(ValidationFailed) as caught:
        services.profile_update(workspace_id=workspace.pk, opening_hours=hours, name="Changed")

    assert caught.value.details == {"opening_hours": [problem]}
    profile = services.profile_get_or_create(workspace_id=workspace.pk)
    assert (profile.name, profile.opening_hours, profile.version) == (workspace.name, {}, 1)


def test_unknown_time_zones_languages_and_fields_are_refused():
    workspace = WorkspaceFactory()

    with pytest.raises(ValidationFailed) as zone:
        services.profile_update(workspace_id=workspace.pk, timezone="Mars/Olympus")
    with pytest.raises(ValidationFailed) as languages:
        services.profile_update(workspace_id=workspace.pk, languages=["spanish"])
    with pytest.raises(ValidationFailed) as field:
        services.profile_update(workspace_id=workspace.pk, version=99)

    assert zone.value.details == {"timezone": ["Unknown time zone."]}
    assert "languages" in languages.value.details
    assert field.value.message == "Not profile fields: version."
    assert services.profile_get_or_create(workspace_id=workspace.pk).version == 1


def test_assistant_settings_are_created_once_with_defaults():
    workspace = WorkspaceFactory()

    first = services.assistant_settings_get_or_create(workspace_id=workspace.pk)
    again = services.assistant_settings_get_or_create(workspace_id=workspace.pk)

    assert first.pk == again.pk
    assert (first.enabled, first.history_token_budget) == (True, 1200)
    assert AssistantSettings.objects.filter(workspace=workspace).count() == 1


# --- chunking ---------------------------------------------------------------------------------------
def paragraph(n: int, length: int) -> str:
    sentence = f"Frase {n} del documento con algo de texto. "
    return (sentence * (length // len(sentence) + 1))[:length].rstrip() + "."


def test_chunks_end_at_paragraph_ends_past_the_minimum():
    paragraphs = [paragraph(n, 320) for n in range(5)]
    text = "\n\n".join(paragraphs)

    chunks = services.chunk_text(text)

    assert chunks == [
        paragraphs[0] + "\n\n" + paragraphs[1] + "\n\n",
        paragraphs[2] + "\n\n" + paragraphs[3] + "\n\n",
        paragraphs[4],
    ]


def test_a_long_paragraph_is_cut_at_sentence_ends_within_the_maximum():
    text = " ".join(f"Esta es la frase número {n} y habla del envío." for n in range(60))

    chunks = services.chunk_text(text)

    assert "".join(chunks) == text
    assert all(600 <= len(chunk) <= 900 for chunk in chunks[:-1])
    assert all(chunk.rstrip().endswith(".") for chunk in chunks)


def test_text_without_any_boundary_is_cut_at_the_maximum():
    text = "a" * 2000

    assert [len(chunk) for chunk in services.chunk_text(text)] == [900, 900, 200]


def test_chunking_keeps_every_character_of_any_text():
    rng = random.Random(7)
    alphabet = "abcdeñáé  .!?\n\t,"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4000)))
        chunks = services.chunk_text(text)

        assert "".join(chunks) == text
        assert all(chunk.strip() for chunk in chunks)


def test_a_document_is_stored_as_chunks_that_join_back_to_it_and_an_faq_as_one():
    workspace = WorkspaceFactory()
    text = "\n\n".join(paragraph(n, 450) for n in range(6)) + "\n"

    document = services.knowledge_create(
        workspace_id=workspace.pk, kind="document", title="Guía", content=text
    )
    faq = services.knowledge_create(workspace_id=workspace.pk, title="¿Larga?", content="Sí. " * 600)

    stored = list(KnowledgeChunk.objects.filter(entry=document).values_list("ordinal", "text"))
    assert [ordinal for ordinal, _ in stored] == list(range(len(stored)))
    assert len(stored) == len(services.chunk_text(text)) >= 3
    assert all(len(chunk) <= 900 for _, chunk in stored)
    assert "".join(chunk for _, chunk in stored) == text
    assert list(KnowledgeChunk.objects.filter(entry=faq).values_list("text", flat=True)) == [
        ("Sí. " * 600).strip()
    ]


def test_blank_content_or_a_bad_language_is_refused_and_nothing_is_written():
    workspace = WorkspaceFactory()

    with pytest.raises(ValidationFailed) as blank:
        services.knowledge_create(workspace_id=workspace.pk, title="¿Vacía?", content="   \n")
    with pytest.raises(ValidationFailed) as language:
        services.knowledge_create(
            workspace_id=workspace.pk, title="¿Idioma?", content="Sí.", language="spanish"
        )

    assert blank.value.details == {"content": ["This field may not be blank."]}
    assert language.value.details == {"language": ["A two-letter code such as es or en."]}
    assert KnowledgeEntry.objects.filter(workspace=workspace).count() == 0
    assert not BusinessProfile.objects.filter(workspace=workspace, knowledge_version__gt=1).exists()


# --- import: CSV ------------------------------------------------------------------------------------
CSV = (
    "question,answer,language\n"
    '¿Hacen envíos?,"Sí, a toda la ciudad.",es\n'
    ",Falta la pregunta,es\n"
    "Do you open on Sundays?,,en\n"
    '"What about ""quotes""?","Two\nlines",en\n'
    "\n"
    "Bad language?,Yes,english\n"
)


def test_csv_import_keeps_the_good_rows_and_reports_the_bad_ones_with_one_version_bump():
    workspace = WorkspaceFactory()
    before = services.profile_get_or_create(workspace_id=workspace.pk).knowledge_version

    report = services.knowledge_import(workspace_id=workspace.pk, filename="faq.csv", content=CSV.encode())

    assert (report.format, report.created, report.updated, report.replaced) == ("csv", 2, 0, 0)
    assert report.errors == [
        ImportRowError(3, "The question is empty."),
        ImportRowError(4, "The answer is empty."),
        ImportRowError(7, "language: A two-letter code such as es or en."),  # a spreadsheet row
    ]
    assert entries(workspace) == [
        ("faq", "¿Hacen envíos?", "Sí, a toda la ciudad.", "es", "faq.csv"),
        ("faq", 'What about "quotes"?', "Two\nlines", "en", "faq.csv"),
    ]
    assert report.knowledge_version == knowledge_version(workspace) == before + 1
    assert KnowledgeChunk.objects.filter(workspace=workspace).count() == 2


def test_csv_with_semicolons_spanish_headers_and_windows_encoding():
    workspace = WorkspaceFactory()
    content = "Pregunta;Respuesta\n¿Abren en agosto?;Sí, todo el año.\n".encode("cp1252")

    report = services.knowledge_import(workspace_id=workspace.pk, filename="FAQ.CSV", content=content)

    assert (report.created, report.errors) == (1, [])
    assert entries(workspace) == [("faq", "¿Abren en agosto?", "Sí, todo el año.", "", "FAQ.CSV")]


def test_csv_reimport_updates_answers_of_known_questions_and_flags_repeats():
    workspace = WorkspaceFactory()
    services.knowledge_create(workspace_id=workspace.pk, title="¿Hacen   envíos?", content="No.")
    content = "question,answer\n¿HACEN envíos?,Sí.\n¿Abren hoy?,Sí.\n¿Abren hoy?,No.\n".encode()

    report = services.knowledge_import(workspace_id=workspace.pk, filename="faq.csv", content=content)

    assert (report.created, report.updated) == (1, 1)
    assert report.errors == [ImportRowError(4, "The same question as row 3.")]
    assert entries(workspace) == [
        ("faq", "¿Hacen envíos?", "Sí.", "", "faq.csv"),
        ("faq", "¿Abren hoy?", "Sí.", "", "faq.csv"),
    ]
    assert list(KnowledgeChunk.objects.filter(workspace=workspace).values_list("text", flat=True)) == [
        "Sí.",
        "Sí.",
    ]


def test_csv_without_the_required_columns_is_refused_whole():
    workspace = WorkspaceFactory()
    before = services.profile_get_or_create(workspace_id=workspace.pk).knowledge_version

    with pytest.raises(ValidationFailed) as caught:
        services.knowledge_import(workspace_id=workspace.pk, filename="x.csv", content=b"q,a\nhola,adios\n")

    assert caught.value.code == "invalid_csv"
    assert entries(workspace) == []
    assert knowledge_version(workspace) == before


# --- import: Markdown and text ----------------------------------------------------------------------
MARKDOWN = """Texto antes de los títulos.

# Guía de la tienda

## Horario
Abrimos de 9 a 18.

### Festivos
Cerramos en festivos.

```
# esto no es un título
```

## Vacío

## Preguntas frecuentes
Q: ¿Hacen envíos?
A: Sí, a toda la ciudad.
   Tardan un día.
Q: ¿Sin respuesta?
Q: ¿Aceptan Bizum?
A: Sí.
"""


def test_markdown_sections_become_documents_and_qa_pairs_faqs():
    workspace = WorkspaceFactory()

    report = services.knowledge_import(
        workspace_id=workspace.pk, filename="la-tienda.md", content=MARKDOWN.encode()
    )

    assert (report.format, report.created) == ("markdown", 4)
    assert report.errors == [
        ImportRowError(15, "The section 'Vacío' has no text."),
        ImportRowError(21, "A question without an answer."),
    ]
    assert entries(workspace) == [
        ("document", "La tienda", "Texto antes de los títulos.", "", "la-tienda.md"),
        (
            "document",
            "Horario",
            "Abrimos de 9 a 18.\n\n### Festivos\nCerramos en festivos.\n\n```\n# esto no es un título\n```",
            "",
            "la-tienda.md",
        ),
        ("faq", "¿Hacen envíos?", "Sí, a toda la ciudad.\n   Tardan un día.", "", "la-tienda.md"),
        ("faq", "¿Aceptan Bizum?", "Sí.", "", "la-tienda.md"),
    ]


def test_reimporting_a_file_replaces_the_documents_it_brought_before():
    workspace = WorkspaceFactory()
    services.knowledge_import(workspace_id=workspace.pk, filename="guia.md", content=b"# A\nuno\n# B\ndos\n")
    services.knowledge_create(workspace_id=workspace.pk, kind="document", title="A", content="a mano")

    report = services.knowledge_import(
        workspace_id=workspace.pk, filename="guia.md", content=b"# A\nuno bis\n"
    )

    assert (report.created, report.replaced) == (1, 2)
    assert entries(workspace) == [
        ("document", "A", "a mano", "", ""),
        ("document", "A", "uno bis", "", "guia.md"),
    ]


def test_plain_text_is_one_document_titled_after_the_file():
    workspace = WorkspaceFactory()
    text = "Devoluciones en 14 días.\n\nCon ticket.\n"

    report = services.knowledge_import(
        workspace_id=workspace.pk, filename="politica_devoluciones.txt", content=text.encode()
    )

    assert (report.format, report.created, report.errors) == ("text", 1, [])
    assert entries(workspace) == [
        (
            "document",
            "Politica devoluciones",
            "Devoluciones en 14 días.\n\nCon ticket.",
            "",
            "politica_devoluciones.txt",
        )
    ]


def test_plain_text_in_qa_pairs_gives_faqs_and_reports_an_orphan_answer():
    workspace = WorkspaceFactory()
    text = "A: ¿Respuesta suelta?\nP: ¿Tienen wifi?\nR: Sí, gratis.\n"

    report = services.knowledge_import(workspace_id=workspace.pk, filename="faq.txt", content=text.encode())

    assert report.created == 1
    assert report.errors == [ImportRowError(1, "An answer without a question.")]
    assert entries(workspace) == [("faq", "¿Tienen wifi?", "Sí, gratis.", "", "faq.txt")]


@pytest.mark.parametrize(
    ("filename", "content", "code"),
    [
        ("faq.pdf", b"%PDF-1.7", "unsupported_file"),
        ("faq.txt", b"  \n\n", "empty_file"),
        ("faq.txt", b"\x00\x01binary", "invalid_file"),
    ],
)
def test_files_that_cannot_be_imported_are_refused(filename, content, code):
    workspace = WorkspaceFactory()

    with pytest.raises(ValidationFailed) as caught:
        services.knowledge_import(workspace_id=workspace.pk, filename=filename, content=content)

    assert caught.value.code == code
    assert entries(workspace) == []


def test_a_file_over_5_mb_is_refused():
    workspace = WorkspaceFactory()

    with pytest.raises(services.PayloadTooLarge):
        services.knowledge_import(
            workspace_id=workspace.pk, filename="big.txt", content=b"a" * (5 * 1024 * 1024 + 1)
        )

    assert entries(workspace) == []


def test_csv_reimport_of_the_same_file_rewrites_nothing_and_a_changed_answer_only_its_faq():
    workspace = WorkspaceFactory()
    content = "question,answer\n¿Hacen envíos?,Sí.\n¿Abren hoy?,Sí.\n".encode()
    services.knowledge_import(workspace_id=workspace.pk, filename="faq.csv", content=content)
    chunks_before = dict(KnowledgeChunk.objects.filter(workspace=workspace).values_list("entry__title", "pk"))
    version_before = services.profile_get_or_create(workspace_id=workspace.pk).knowledge_version

    same = services.knowledge_import(workspace_id=workspace.pk, filename="faq.csv", content=content)
    changed = services.knowledge_import(
        workspace_id=workspace.pk, filename="faq.csv", content="question,answer\n¿Abren hoy?,No.\n".encode()
    )

    assert (same.created, same.updated, same.knowledge_version) == (0, 0, version_before)
    assert (changed.created, changed.updated, changed.knowledge_version) == (0, 1, version_before + 1)
    chunks_after = dict(KnowledgeChunk.objects.filter(workspace=workspace).values_list("entry__title", "pk"))
    assert chunks_after["¿Hacen envíos?"] == chunks_before["¿Hacen envíos?"]  # untouched
    assert chunks_after["¿Abren hoy?"] != chunks_before["¿Abren hoy?"]  # rewritten with its new answer
    assert entries(workspace)[1][2] == "No."
