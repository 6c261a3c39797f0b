"""The last responder: no network, always answers. A sure FAQ match, else a polite hand-off."""

from __future__ import annotations

import re

from apps.assistant.knowledge import confident_answer, detect_language, fold
from apps.assistant.models import BusinessProfile
from apps.assistant.prompt import default_disclosure
from apps.assistant.types import Passage

HANDOFF = {
    "es": "Gracias por tu mensaje. Ahora mismo no puedo responderte yo, pero una persona del equipo "
    "te contestará en breve.",
    "en": "Thanks for your message. I can't answer this myself right now, but a person from the team "
    "will reply soon.",
}
_WHAT = (
    r"(?:bot|robot|chatbot|maquina|ia|ai|inteligencia artificial|humano|humana|persona|human|person|machine)"
)
# Questions about what the bot is, on accent-folded text. A request for a person ("quiero hablar con
# una persona") is not one of them: it falls through to the hand-off.
_IDENTITY_QUESTION = re.compile(
    rf"\b(?:eres|sos|es usted|estoy hablando con|hablo con|estoy chateando con|"
    rf"are you|am i (?:talking|speaking|chatting) (?:to|with)|is this) (?:an? |un |una )?"
    rf"(?:real )?{_WHAT}\b"
)


def is_identity_question(text: str) -> bool:
    """True for questions about what the bot is: "are you a bot?", "¿eres humano?", "am I talking to a person?"."""
    return bool(_IDENTITY_QUESTION.search(" ".join(fold(text).split())))


def reply_language(*, profile: BusinessProfile, question: str, language: str) -> str:
    """`language` when given; else detected from the question; else the business's first language."""
    for candidate in (language, detect_language(question), *profile.languages):
        code = (candidate or "").lower()[:2]
        if code in HANDOFF:
            return code
    return "es"


def disclosure(*, profile: BusinessProfile, language: str) -> str:
    return profile.disclosure_text.strip() or default_disclosure(
        business_name=profile.name, language=language
    )


def offline_reply(
    *, profile: BusinessProfile, question: str, passages: list[Passage], language: str
) -> tuple[str, bool]:
    """(text, handoff). The FAQ answer when `confident_answer` finds one (handoff False); otherwise a
    short message in the customer's language saying a person will answer soon (handoff True).

    Asked whether it is a bot or a person, it answers with the disclosure (followed by the FAQ answer
    when the same message also asked a known question); it never claims to be human.
    """
    language = reply_language(profile=profile, question=question, language=language)
    answer = confident_answer(passages=passages, query=question)
    if is_identity_question(question):
        text = disclosure(profile=profile, language=language)
        return (f"{text}\n\n{answer.text}" if answer else text), False
    if answer is not None:
        return answer.text, False
    return HANDOFF[language], True
