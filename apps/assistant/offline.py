"""The last responder: no network, always answers. A sure FAQ match, the opening hours, else a polite hand-off."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from apps.assistant.knowledge import confident_answer
from apps.assistant.language import detect_language, fold
from apps.assistant.models import BusinessProfile
from apps.assistant.prompt import default_disclosure, local_now
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


# Questions about opening hours, on accent-folded text. "hora" alone is not enough ("¿a qué hora
# puedo recoger la tarta?"): it takes a word about opening or closing.
_HOURS_QUESTION = re.compile(
    r"\b(?:horarios?|abr(?:en|is|e|ira|iran|imos)|abiert[oa]s?|cierr(?:an|a|en)|cerr(?:ais|ar|ado|ados)|"
    r"open|opening|opens|hours|close|closes|closing|closed)\b"
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_HOURS_TEXT = {
    "es": {
        "intro": "Nuestro horario ({zone}):",
        "and": " y ",
        "to": " a ",
        "closed": "cerrado",
        "open_now": "Ahora mismo estamos abiertos, hasta las {time}.",
        "opens_today": "Ahora mismo estamos cerrados; hoy abrimos a las {time}.",
        "opens_later": "Ahora mismo estamos cerrados; abrimos el {day} a las {time}.",
    },
    "en": {
        "intro": "Our opening hours ({zone}):",
        "and": " and ",
        "to": " to ",
        "closed": "closed",
        "open_now": "We are open right now, until {time}.",
        "opens_today": "We are closed right now; we open today at {time}.",
        "opens_later": "We are closed right now; we open on {day} at {time}.",
    },
}


def is_hours_question(text: str) -> bool:
    """True for "¿a qué hora abren?", "¿cuál es el horario?", "are you open on Sunday?"."""
    return bool(_HOURS_QUESTION.search(" ".join(fold(text).split())))


def hours_answer(*, profile: BusinessProfile, language: str, now: datetime | None = None) -> str | None:
    """The week's opening hours from the profile, and whether it is open now; None when not given."""
    hours = profile.opening_hours or {}
    if not any(hours.get(day) for day in _DAYS):
        return None
    text, names = _HOURS_TEXT[language], _DAY_NAMES[language]
    lines = [text["intro"].format(zone=profile.timezone or "UTC")]
    index = 0
    while index < 7:  # consecutive days with the same hours on one line: "lunes a viernes: ..."
        last = index
        while last + 1 < 7 and hours.get(_DAYS[last + 1], []) == hours.get(_DAYS[index], []):
            last += 1
        days = names[index] if last == index else f"{names[index]}{text['to']}{names[last]}"
        spans = text["and"].join(f"{start}-{end}" for start, end in hours.get(_DAYS[index], []))
        lines.append(f"- {days}: {spans or text['closed']}")
        index = last + 1
    lines.append(_open_now(hours, local_now(profile, now), language))
    return "\n".join(lines)


def _open_now(hours: dict[str, list[list[str]]], local: datetime, language: str) -> str:
    text, names = _HOURS_TEXT[language], _DAY_NAMES[language]
    clock = local.strftime("%H:%M")
    for start, end in hours.get(_DAYS[local.weekday()], []):
        if start <= clock < end:
            return text["open_now"].format(time=end)
    for ahead in range(8):
        day = (local + timedelta(days=ahead)).weekday()
        for start, _end in hours.get(_DAYS[day], []):
            if ahead or start > clock:
                if ahead == 0:
                    return text["opens_today"].format(time=start)
                return text["opens_later"].format(day=names[day], time=start)
    return ""


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

    Asked about opening hours with no FAQ that answers it, it states the profile's hours and whether
    the business is open now.
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
    if is_hours_question(question):
        hours = hours_answer(profile=profile, language=language)
        if hours is not None:
            return hours, False
    return HANDOFF[language], True
