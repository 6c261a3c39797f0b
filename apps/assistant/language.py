"""Which language a customer wrote in, and text compared without case or accents.

The one place for both: knowledge retrieval, the offline responder, the reply cache and the keyword
rules of inbound processing (opt-out, opt-in, hand-off) all call these.
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Casefold and drop accents (á -> a, ñ -> n, ü -> u)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def folded_words(text: str) -> str:
    """The words of `text`, folded and joined by one space, punctuation dropped ("¡BAJA!" -> "baja")."""
    return " ".join(re.findall(r"\w+", fold(text)))


# Words typical of each language in short chat messages, compared folded. Besides the function words,
# the keywords customers send alone ("STOP", "baja", "agente") must tell their language.
_ES_MARKERS = frozenset(
    {
        "el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "por", "para", "con", "es",
        "son", "eres", "esta", "estan", "estoy", "hay", "tienen", "tiene", "hacen", "puedo", "quiero",
        "cuanto", "cuando", "donde", "como", "cual", "quien", "hola", "gracias", "buenas", "buenos",
        "usted", "ustedes", "mi", "su", "sus", "nos", "al", "lo", "pero", "muy", "tambien", "horario",
        "baja", "alta", "cancelar", "agente", "humano", "persona", "favor", "necesito", "hablar", "ayuda",
        "adios", "vale", "perfecto", "genial", "dias", "tardes", "noches", "abris", "estais", "teneis",
        "haceis", "sabados", "domingo", "hoy", "manana", "ahora",
    }
)  # fmt: skip
_EN_MARKERS = frozenset(
    {
        "the", "and", "is", "are", "you", "your", "what", "when", "where", "how", "do", "does", "can",
        "of", "to", "in", "for", "with", "on", "at", "this", "that", "it", "my", "i", "we", "have",
        "hello", "hi", "thanks", "thank", "please", "there", "which", "who", "why", "would", "could",
        "from", "about", "open", "hours", "price", "am", "talking", "speaking", "an", "be",
        "stop", "unsubscribe", "start", "agent", "human", "want", "talk",
        "good", "morning", "afternoon", "evening", "bye", "goodbye", "okay", "great", "days", "today",
        "tomorrow", "now",
    }
)  # fmt: skip
_ES_CHARS = frozenset("ñ¿¡áéíóú")


def detect_language(text: str) -> str:
    """The language of `text`: "es", "en", or "" when it cannot tell (too short, neither, a tie).

    Counts words typical of each language, so the majority wins in a mixed message; Spanish
    punctuation and accents count for Spanish.
    """
    lowered = text.casefold()
    words = [fold(word) for word in _WORD.findall(lowered)]
    spanish = sum(word in _ES_MARKERS for word in words) + 2 * sum(ch in _ES_CHARS for ch in lowered)
    english = sum(word in _EN_MARKERS for word in words)
    if spanish > english:
        return "es"
    if english > spanish:
        return "en"
    return ""
