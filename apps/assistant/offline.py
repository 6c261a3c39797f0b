"""The last responder: no network, always answers. Greetings and thanks, a sure FAQ match (for the whole
message, one of its questions, or a follow-up of the previous one), the opening hours, else a polite
hand-off. One language per reply; never claims to be a person."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from apps.assistant.knowledge import confident_answer, content_words
from apps.assistant.language import detect_language, fold, folded_words
from apps.assistant.models import BusinessProfile
from apps.assistant.prompt import disclosure, local_now
from apps.assistant.types import Passage, Turn

Search = Callable[[str], list[Passage]]

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


# Days (and "today", "now") a customer may ask about, folded; plurals too ("los sábados").
_DAY_WORDS: dict[str, int | str] = {
    **{word: index for index, names in enumerate((
        ("lunes", "monday", "mondays"), ("martes", "tuesday", "tuesdays"),
        ("miercoles", "wednesday", "wednesdays"), ("jueves", "thursday", "thursdays"),
        ("viernes", "friday", "fridays"), ("sabado", "sabados", "saturday", "saturdays"),
        ("domingo", "domingos", "sunday", "sundays"),
    )) for word in names},
    "hoy": "today", "today": "today", "tonight": "today", "manana": "tomorrow", "tomorrow": "tomorrow",
    "ahora": "now", "now": "now", "ya": "now",
}  # fmt: skip
_ON_DAY = {
    "es": {"day": "El {day}: {spans}.", "closed": "El {day} estamos cerrados."},
    "en": {"day": "On {day}: {spans}.", "closed": "On {day} we are closed."},
}


def asked_day(text: str) -> int | str | None:
    """The weekday (0 = Monday), "today", "tomorrow" or "now" that `text` asks about, if any."""
    for word in folded_words(text).split():
        if word in _DAY_WORDS:
            return _DAY_WORDS[word]
    return None


def day_hours_answer(
    *, profile: BusinessProfile, language: str, day: int | str, now: datetime | None = None
) -> str | None:
    """The hours of the day asked about and whether the business is open now; None without hours."""
    hours = profile.opening_hours or {}
    if not any(hours.get(d) for d in _DAYS):
        return None
    local = local_now(profile, now)
    open_now = _open_now(hours, local, language)
    if day == "now":
        return open_now
    index = local.weekday() if day == "today" else (local.weekday() + 1) % 7 if day == "tomorrow" else day
    assert isinstance(index, int)  # noqa: S101
    text, name = _HOURS_TEXT[language], _DAY_NAMES[language][index]
    spans = text["and"].join(f"{start}-{end}" for start, end in hours.get(_DAYS[index], []))
    line = _ON_DAY[language]["day" if spans else "closed"].format(day=name, spans=spans)
    return f"{line} {open_now}".strip()


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


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# Small talk, compared on folded words: a message made only of these words (or only of emoji) is
# answered kindly rather than searched in the FAQ or handed to a person.
_GREETING = frozenset(
    "hola holi buenas buenos buen dia dias tardes noches que tal hello hi hey there good morning afternoon evening saludos".split()
)
_THANKS = frozenset("gracias muchas mil muchisimas thanks thank you thx ty much very so".split())
_BYE = frozenset("adios hasta luego pronto chao chau bye goodbye see later".split())
_ACK = frozenset(
    "ok okay oki vale perfecto genial estupendo great perfect cool fine nice de acuerdo entendido got it bien muy si yes claro sure".split()
)
_SMALL_TALK = {
    "greeting": {
        "es": "¡Hola! {disclosure} ¿En qué puedo ayudarte?",
        "en": "Hello! {disclosure} How can I help you?",
    },
    "thanks": {
        "es": "¡De nada! Si necesitas algo más, aquí estoy.",
        "en": "You're welcome! If you need anything else, just write.",
    },
    "bye": {"es": "¡Hasta pronto! Gracias por escribirnos.", "en": "Goodbye, and thanks for writing to us!"},
    "ack": {"es": "😊 ¿Puedo ayudarte en algo más?", "en": "😊 Can I help you with anything else?"},
}


def small_talk(text: str) -> str | None:
    """The small talk `text` is only made of: greeting, thanks, bye, ack (also emoji alone); else None."""
    words = set(folded_words(text).split())
    if not words:
        return "ack" if text.strip() else None  # emoji, a sticker's placeholder, punctuation
    if not words <= _GREETING | _THANKS | _BYE | _ACK:
        return None
    for kind, vocabulary in (("bye", _BYE), ("thanks", _THANKS), ("greeting", _GREETING)):
        if words & vocabulary:
            return kind
    return "ack"


# A follow-up leans on the previous question: "¿Y los sábados?", "and on Sundays?", "which days?".
_FOLLOW_UP_START = re.compile(r"^(?:y|e|and|what about|how about|tambien|also)\b")
FOLLOW_UP_MAX_WORDS = 2  # content words; more, and the message stands on its own


def follow_up_kind(text: str) -> str | None:
    """The follow-up form: "explicit" ("¿Y ...?", "and ...?"), "short" (few content words) or None."""
    if _FOLLOW_UP_START.match(" ".join(folded_words(text).split())):
        return "explicit"
    return "short" if len(content_words(text)) <= FOLLOW_UP_MAX_WORDS else None


def questions_in(text: str) -> list[str]:
    """The questions of a long message (sentences ending in "?"), and its last sentence, in order."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    if len(sentences) < 2:
        return []
    picked = [s for s in sentences if s.endswith("?")]
    if sentences[-1] not in picked:
        picked.append(sentences[-1])
    return picked


def offline_reply(
    *,
    profile: BusinessProfile,
    question: str,
    passages: list[Passage],
    language: str,
    history: Sequence[Turn] = (),
    search: Search | None = None,
) -> tuple[str, bool]:
    """(text, handoff), in one language (the customer's). In order:

    - greetings, thanks, goodbyes, "ok" and emoji-only messages get a kind answer (a greeting
      with the disclosure: the bot says what it is);
    - "are you a bot?" gets the disclosure (and the FAQ answer when the message also asked one);
    - hours asked for a day, today or now ("¿abrís el domingo?") are answered from the profile;
    - the FAQ answer when `confident_answer` finds one for the whole message or, with `search`,
      for one of the questions of a long message;
    - any other hours question gets the week's hours from the profile;
    - a follow-up ("¿Y los sábados?", "which days?") is read with the customer's previous turn in
      `history`: the hours of the day it names, or the FAQ that answered that turn when it still
      ranks first (for a short message without "y"/"and": when it answers both together surely);
    - otherwise a short message saying a person will answer soon (handoff True).
    """
    language = reply_language(profile=profile, question=question, language=language)
    kind = small_talk(question)
    if kind is not None:
        text = _SMALL_TALK[kind][language]
        return text.format(disclosure=disclosure(profile=profile, language=language)), False
    answer = confident_answer(passages=passages, query=question)
    if is_identity_question(question):
        text = disclosure(profile=profile, language=language)
        return (f"{text}\n\n{answer.text}" if answer else text), False
    day = asked_day(question)
    if day is not None and is_hours_question(question):
        hours = day_hours_answer(profile=profile, language=language, day=day)
        if hours:
            return hours, False
    if answer is None and search is not None:
        for part in questions_in(question):
            answer = confident_answer(passages=search(part), query=part)
            if answer is not None:
                break
    if answer is not None:
        return answer.text, False
    if is_hours_question(question):
        hours = hours_answer(profile=profile, language=language)
        if hours is not None:
            return hours, False
    follow_up = _follow_up(
        profile=profile, question=question, language=language, history=history, search=search
    )
    if follow_up is not None:
        return follow_up, False
    return HANDOFF[language], True


def _follow_up(
    *, profile: BusinessProfile, question: str, language: str, history: Sequence[Turn], search: Search | None
) -> str | None:
    previous = next((turn.text for turn in reversed(history) if turn.role == "customer" and turn.text), "")
    kind = follow_up_kind(question)
    if not previous or kind is None:
        return None
    day = asked_day(question)
    if day is not None and is_hours_question(previous):
        return day_hours_answer(profile=profile, language=language, day=day)
    if search is None:
        return None
    earlier: Passage | None = None
    asked = previous
    for asked in [previous, *questions_in(previous)]:
        earlier = confident_answer(passages=search(asked), query=asked)
        if earlier is not None:
            break
    if earlier is None:
        return None
    combined = f"{asked}\n{question}"
    passages = search(combined)
    if kind == "short":  # "which days?" may follow; "¿tenéis catering?" is a question of its own
        sure = confident_answer(passages=passages, query=combined)
        return earlier.text if sure is not None and sure.entry_id == earlier.entry_id else None
    if passages and passages[0].entry_id == earlier.entry_id:
        return earlier.text
    return None
