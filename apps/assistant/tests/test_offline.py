from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import knowledge, services
from apps.assistant.models import BusinessProfile
from apps.assistant.offline import HANDOFF, is_identity_question, offline_reply
from apps.assistant.types import Passage

SHIPPING = Passage(
    entry_id=1, title="¿Hacen envíos a domicilio?", text="Sí, enviamos a toda la ciudad por 3 €.", score=2.5
)
ES_HANDOFF = (
    "Gracias por tu mensaje. Ahora mismo no puedo responderte yo, pero una persona del equipo te "
    "contestará en breve."
)
EN_HANDOFF = "Thanks for your message. I can't answer this myself right now, but a person from the team will reply soon."


def profile(**fields):
    return BusinessProfile(**{"name": "Panadería Luna", "languages": ["es"], **fields})


def reply(question, passages=(), language="", **fields):
    return offline_reply(
        profile=profile(**fields), question=question, passages=list(passages), language=language
    )


def test_the_handoff_messages_are_the_documented_ones():
    assert HANDOFF == {"es": ES_HANDOFF, "en": EN_HANDOFF}


def test_a_confident_faq_is_answered_without_handoff():
    assert reply("¿Envían pedidos a domicilio?", [SHIPPING]) == (
        "Sí, enviamos a toda la ciudad por 3 €.",
        False,
    )


@pytest.mark.django_db
def test_retrieved_knowledge_answers_and_off_topic_hands_off_in_the_customers_language():
    workspace = WorkspaceFactory()
    services.knowledge_create(
        workspace_id=workspace.pk,
        title="What are your opening hours?",
        content="9am to 6pm, Monday to Friday.",
    )
    on_topic = "When are you open?"
    off_topic = "Can you recommend a good film?"

    answered = reply(on_topic, knowledge.retrieve(workspace_id=workspace.pk, query=on_topic))
    handed_off = reply(off_topic, knowledge.retrieve(workspace_id=workspace.pk, query=off_topic))

    assert answered == ("9am to 6pm, Monday to Friday.", False)
    assert handed_off == (EN_HANDOFF, True)


def test_without_a_confident_answer_it_hands_off_in_spanish():
    assert reply("¿Cuál es la capital de Francia?") == (ES_HANDOFF, True)
    assert reply("¿Hacen tartas de boda?", [SHIPPING]) == (ES_HANDOFF, True)


def test_the_language_given_wins_over_detection():
    assert reply("¿Cuál es la capital de Francia?", language="en") == (EN_HANDOFF, True)


def test_undetectable_text_uses_the_business_language_then_spanish():
    assert reply("xyz 123", languages=["en", "es"]) == (EN_HANDOFF, True)
    assert reply("xyz 123", languages=[]) == (ES_HANDOFF, True)
    assert reply("xyz 123", languages=["fr"]) == (ES_HANDOFF, True)


def test_asking_for_a_person_is_handed_off_not_answered_with_the_disclosure():
    assert reply("Quiero hablar con una persona") == (ES_HANDOFF, True)


@pytest.mark.parametrize(
    "question", ["¿Eres un robot?", "¿eres humano?", "¿Estoy hablando con una persona real?"]
)
def test_are_you_a_bot_in_spanish_gets_the_default_disclosure(question):
    text, handoff = reply(question)

    assert text == (
        "Soy el asistente virtual de Panadería Luna: un programa automático, no una persona. "
        "Si lo prefieres, una persona del equipo puede atenderte."
    )
    assert handoff is False


@pytest.mark.parametrize("question", ["Are you a bot?", "are you human??", "Am I talking to a real person?"])
def test_are_you_a_bot_in_english_gets_the_english_default_disclosure(question):
    text, handoff = reply(question)

    assert text == (
        "I'm the virtual assistant of Panadería Luna: an automated program, not a person. "
        "If you prefer, a person from the team can help you."
    )
    assert handoff is False


def test_the_business_disclosure_text_is_used_when_written():
    text, handoff = reply(
        "¿Eres un robot?", disclosure_text="Soy Luna, asistente virtual (no soy una persona)."
    )

    assert (text, handoff) == ("Soy Luna, asistente virtual (no soy una persona).", False)


def test_a_bot_question_with_a_known_question_gets_both_answers():
    text, handoff = reply("¿Eres un robot? ¿Hacen envíos a domicilio?", [SHIPPING], name="")

    assert text == (
        "Soy un asistente virtual: un programa automático, no una persona. Si lo prefieres, una persona del "
        "equipo puede atenderte.\n\nSí, enviamos a toda la ciudad por 3 €."
    )
    assert handoff is False


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("¿Eres una IA?", True),
        ("¿Es usted un robot?", True),
        ("¿hablo con una máquina?", True),
        ("Is this a bot?", True),
        ("R U a bot", False),
        ("Is this real leather?", False),
        ("Quiero hablar con un humano", False),
        ("¿Eres de Sevilla?", False),
    ],
)
def test_identity_questions(text, asks):
    assert is_identity_question(text) is asks


WEEK = {
    "mon": [["08:00", "14:00"], ["17:00", "20:30"]],
    "tue": [["08:00", "14:00"], ["17:00", "20:30"]],
    "wed": [["08:00", "14:00"], ["17:00", "20:30"]],
    "thu": [["08:00", "14:00"], ["17:00", "20:30"]],
    "fri": [["08:00", "14:00"], ["17:00", "20:30"]],
    "sat": [["08:00", "14:30"]],
    "sun": [],
}


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("¿A qué hora abren?", True),
        ("¿Cuál es el horario?", True),
        ("¿Estáis abiertos el domingo?", True),
        ("what are your opening hours", True),
        ("are you open on Sunday?", True),
        ("¿a qué hora puedo recoger la tarta?", False),
        ("quiero abrir una cuenta", False),
    ],
)
def test_hours_questions(text, asks):
    from apps.assistant.offline import is_hours_question

    assert is_hours_question(text) is asks


def _at(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/Madrid"))


def test_the_week_is_stated_with_equal_days_grouped_and_whether_it_is_open_now():
    from apps.assistant.offline import hours_answer

    text = hours_answer(
        profile=profile(opening_hours=WEEK, timezone="Europe/Madrid"),
        language="es",
        now=_at("2026-11-26T10:15"),  # a Thursday morning
    )

    assert text == (
        "Nuestro horario (Europe/Madrid):\n"
        "- lunes a viernes: 08:00-14:00 y 17:00-20:30\n"
        "- sábado: 08:00-14:30\n"
        "- domingo: cerrado\n"
        "Ahora mismo estamos abiertos, hasta las 14:00."
    )


@pytest.mark.parametrize(
    ("local", "language", "last_line"),
    [
        ("2026-11-26T15:00", "es", "Ahora mismo estamos cerrados; hoy abrimos a las 17:00."),
        ("2026-11-28T16:00", "es", "Ahora mismo estamos cerrados; abrimos el lunes a las 08:00."),
        ("2026-11-29T12:00", "en", "We are closed right now; we open on Monday at 08:00."),
        ("2026-11-27T20:29", "en", "We are open right now, until 20:30."),
        ("2026-11-27T20:30", "en", "We are closed right now; we open on Saturday at 08:00."),
    ],
)
def test_open_now_is_read_in_the_business_time_zone(local, language, last_line):
    from apps.assistant.offline import hours_answer

    utc_now = _at(local).astimezone(ZoneInfo("UTC"))  # the server's clock is UTC

    text = hours_answer(
        profile=profile(opening_hours=WEEK, timezone="Europe/Madrid"), language=language, now=utc_now
    )

    assert text is not None and text.splitlines()[-1] == last_line


def test_an_hours_question_without_a_matching_faq_is_answered_from_the_profile():
    text, handoff = reply("¿A qué hora abren?", opening_hours=WEEK, timezone="Europe/Madrid")

    assert handoff is False
    assert text.startswith("Nuestro horario (Europe/Madrid):")


def test_an_hours_question_hands_off_when_the_profile_gives_no_hours():
    assert reply("¿A qué hora abren?", opening_hours={}) == (ES_HANDOFF, True)
