from __future__ import annotations

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
    assert reply("ok", languages=["en", "es"]) == (EN_HANDOFF, True)
    assert reply("ok", languages=[]) == (ES_HANDOFF, True)
    assert reply("ok", languages=["fr"]) == (ES_HANDOFF, True)


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
