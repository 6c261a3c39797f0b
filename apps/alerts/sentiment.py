"""How negative a customer's message is, offline: a lexicon and a few rules, Spanish and English.

Plain text in, a score in [-1, 1] out (no I/O, no model download; tens of microseconds a message).
The lexicon (`sentiment_lexicon.tsv`) gives words, phrases and emoji a valence; the rules handle
what short customer-service messages lean on: negation ("no funciona", "nadie contesta", "never
arrived", a term's own negated valence), intensifiers, shouting (capitals, "!!!", "nooo"), "pero" /
"but" (what follows weighs more), hypotheticals ("¿y si no funciona?"), and courtesy or a cheerful
interjection next to a complaint ("Genial, otra vez sin luz", "..., gracias"), which does not make it
less of one. How it was measured, and how it fails: docs/alerts.md.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from apps.assistant.language import fold

LEXICON_PATH = Path(__file__).with_name("sentiment_lexicon.tsv")
# A rule's default: below this a message counts as negative (the evaluation's cut-off).
NEGATIVE_BELOW = -0.3

_NEGATORS = frozenset(
    {
        "no", "nunca", "jamas", "ni", "nadie", "nada", "sin", "tampoco", "ningun", "ninguna", "ninguno",
        "not", "never", "nobody", "nothing", "without", "cannot", "none", "neither", "nor",
    }
)  # fmt: skip
_NEGATION_SCOPE = 3  # words after a negator that it reaches
_INTENSIFIERS = {
    "muy": 1.3, "super": 1.3, "tan": 1.3, "demasiado": 1.3, "totalmente": 1.4, "completamente": 1.4,
    "absolutamente": 1.4, "realmente": 1.3, "bastante": 1.15, "muchisimo": 1.4, "mucho": 1.2,
    "muchas": 1.2, "menudo": 1.3, "menuda": 1.3, "que": 1.1, "really": 1.3, "very": 1.3, "so": 1.3,
    "extremely": 1.5, "absolutely": 1.4, "totally": 1.4, "completely": 1.4, "incredibly": 1.4,
    "too": 1.2, "still": 1.3, "poco": 0.6, "algo": 0.7, "slightly": 0.6, "bit": 0.7, "kinda": 0.7, "little": 0.7,
}  # fmt: skip
_BUT = frozenset({"pero", "but", "sino", "however", "though", "aunque"})
_IF = frozenset({"si", "if", "whether"})  # "sí" (yes) keeps its accent until folded; see _tokens
# Dropped when the message complains anyway: courtesy and interjections that are often ironic.
_SOFTENERS = frozenset(
    {"gracias", "thanks", "thank", "genial", "great", "perfecto", "perfect", "estupendo", "bien",
     "bueno", "good", "nice", "awesome", "ok", "vale", "fantastico", "fantastic", "wonderful"}
)  # fmt: skip
_ALPHA = 15.0  # normalisation of the sum into [-1, 1], as VADER does
_EMOTICON = re.compile(r"(?<!\w)(?::-?\(|:'\(|:-?\)|:-?[dD]|<3)(?!\w)")
_TOKEN = re.compile(r"[^\W_]+|[!?.,;:]|[^\w\s]")
_REPEAT = re.compile(r"(\w)\1{2,}")
_CONTRACTION = re.compile(r"(?i)n['’]t\b")
# "Llevo una semana...", "hace dos horas que...", "been 3 days", "for an hour": waiting, said in time.
_WAITED = re.compile(
    r"\b(?:llev[a-z]*|hace|been|for|waiting|esperando)\s+(?:\w+\s+){0,2}?"
    r"(?:dias?|semanas?|mes|meses|horas?|days?|weeks?|months?|hours?)\b"
)
_WAITED_VALENCE = -2.0


@dataclass(frozen=True)
class Lexicon:
    words: dict[str, tuple[float, float | None]]
    phrases: dict[tuple[str, ...], tuple[float, float | None]]
    longest: int


def lexicon_load(path: Path = LEXICON_PATH) -> Lexicon:
    """The lexicon file: `term<TAB>valence[<TAB>negated valence]`; `#` starts a comment line."""
    words: dict[str, tuple[float, float | None]] = {}
    phrases: dict[tuple[str, ...], tuple[float, float | None]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        term, *values = line.split("\t")
        entry = (float(values[0]), float(values[1]) if len(values) > 1 else None)
        key = tuple(fold(term).split())
        held = phrases if len(key) > 1 else words
        name: object = key if len(key) > 1 else key[0]
        if name in held:
            raise ValueError(f"{path.name}:{number}: {term!r} is listed twice")
        held[name] = entry  # type: ignore[index]
    return Lexicon(words=words, phrases=phrases, longest=max((len(p) for p in phrases), default=1))


_LEXICON = lexicon_load()


@lru_cache(maxsize=20_000)
def _folded(word: str) -> tuple[str, bool]:
    """The word folded, with letters repeated three times or more cut to one ("nooo" -> "no"), and
    whether it was stretched so."""
    folded = fold(word)
    squeezed = _REPEAT.sub(r"\1", folded)
    return squeezed, squeezed != folded


@dataclass
class _Token:
    text: str  # folded
    kind: str  # "w" word, "p" punctuation, "s" symbol (emoji, emoticon)
    shout: bool = False  # capitals or stretched letters
    conditional: bool = False  # "si" without its accent: "if"


def _tokens(text: str) -> list[_Token]:
    text = _CONTRACTION.sub(" not", text)
    shouting_all = sum(c.isalpha() for c in text) >= 6 and text.upper() == text
    out: list[_Token] = []
    cursor = 0
    for emoticon in _EMOTICON.finditer(text):
        out.extend(_plain_tokens(text[cursor : emoticon.start()], shouting_all))
        out.append(_Token(emoticon.group(0).lower(), "s"))
        cursor = emoticon.end()
    out.extend(_plain_tokens(text[cursor:], shouting_all))
    return out


def _plain_tokens(text: str, shouting_all: bool) -> list[_Token]:
    out = []
    for raw in _TOKEN.findall(text):
        if raw in "!?.,;:":
            out.append(_Token(raw, "p"))
        elif raw[0].isalnum():
            word, stretched = _folded(raw)
            shout = stretched or shouting_all or (len(raw) >= 3 and raw.isupper())
            out.append(_Token(word, "w", shout=shout, conditional=raw.casefold() in _IF))
        elif raw not in "\ufe0f\u200d":
            out.append(_Token(raw, "s"))
    return out


@dataclass(frozen=True)
class Mood:
    score: float  # -1 (furious) .. 1 (delighted)
    cues: tuple[str, ...]  # the negative terms that weighed most, for the alert's summary


def sentiment_score(text: str, lexicon: Lexicon = _LEXICON) -> Mood:
    """How negative or positive `text` is, and the negative terms that made it so."""
    tokens = _tokens(text)
    parts: list[tuple[float, str, bool]] = []  # valence, term, dropped when the message complains
    negated_for = 0  # words left in the reach of the last negator
    boost = 1.0  # intensifiers waiting for the next sentiment term
    hypothetical = False
    after_but = False
    exclamations = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "p":
            exclamations += token.text == "!"
            negated_for, boost, hypothetical = 0, 1.0, False
            i += 1
            continue
        entry, term, width = _look_up(tokens, i, lexicon)
        if entry is None and token.kind == "w":
            if token.text in _BUT:
                parts = [(v * 0.5, t, s) for v, t, s in parts]
                after_but, negated_for, boost = True, 0, 1.0
            elif token.conditional:
                hypothetical = True
            elif token.text in _NEGATORS:
                negated_for = _NEGATION_SCOPE + 1
            elif token.text in _INTENSIFIERS:
                boost *= _INTENSIFIERS[token.text]
        if entry is not None:
            valence, when_negated = entry
            if negated_for > 0 and token.kind == "w":
                if when_negated is not None:
                    valence = when_negated
                else:
                    valence *= -0.75 if valence > 0 else -0.4
            if valence:
                valence *= boost * (1.3 if any(t.shout for t in tokens[i : i + width]) else 1.0)
                valence *= 0.2 if hypothetical else 1.0
                valence *= 1.5 if after_but else 1.0
                parts.append((valence, term, term in _SOFTENERS))
                boost = 1.0
        if token.kind == "w":
            negated_for = max(0, negated_for - width)
        i += width
    waited = _WAITED.search(" ".join(t.text for t in tokens if t.kind == "w"))
    if waited is not None:
        parts.append((_WAITED_VALENCE, waited.group(0), False))
    complaint = sum(v for v, _, _ in parts if v < 0)
    if complaint <= -1.5:
        parts = [p for p in parts if not p[2]]
    total = sum(v for v, _, _ in parts)
    if total:
        total += math.copysign(min(exclamations, 3) * 0.3, total)
    worst = sorted((p for p in parts if p[0] < 0), key=lambda p: p[0])
    return Mood(
        score=total / math.sqrt(total * total + _ALPHA),
        cues=tuple(dict.fromkeys(term for _, term, _ in worst))[:3],
    )


def _look_up(
    tokens: list[_Token], i: int, lexicon: Lexicon
) -> tuple[tuple[float, float | None] | None, str, int]:
    """The longest lexicon entry starting at token i: (valence, negated valence), the term, its width."""
    if tokens[i].kind == "w":
        for width in range(min(lexicon.longest, len(tokens) - i), 1, -1):
            run = tokens[i : i + width]
            if all(t.kind == "w" for t in run):
                key = tuple(t.text for t in run)
                if key in lexicon.phrases:
                    return lexicon.phrases[key], " ".join(key), width
    term = tokens[i].text
    return lexicon.words.get(term), term, 1


def is_negative(text: str, threshold: float = NEGATIVE_BELOW) -> bool:
    return sentiment_score(text).score < threshold
