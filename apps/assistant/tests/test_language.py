import pytest

from apps.assistant.language import detect_language, fold, folded_words


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿eres un robot?", "es"),
        ("Hola, ¿a qué hora abren mañana?", "es"),
        ("¿Envían a domicilio?", "es"),
        ("are you a bot?", "en"),
        ("What time do you open tomorrow?", "en"),
        ("Do you deliver?", "en"),
        ("ok", ""),
        ("WiFi 5G", ""),
        ("", ""),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("STOP", "en"),
        ("Unsubscribe", "en"),
        ("start", "en"),
        ("agent", "en"),
        ("¡Baja!", "es"),
        ("BAJÁ", "es"),
        ("cancelar", "es"),
        ("alta", "es"),
        ("agente", "es"),
        ("quiero hablar con una persona", "es"),
    ],
)
def test_keywords_customers_send_alone_tell_their_language(text, language):
    assert detect_language(text) == language


def test_the_majority_of_words_wins_in_a_mixed_message():
    assert detect_language("stop the messages please, gracias") == "en"
    assert detect_language("hola, quiero hablar con un agent") == "es"


def test_fold_drops_case_and_accents_and_keeps_everything_else():
    assert fold("Niños, ÑANDÚ y pingüinos: ¡el 25%!") == "ninos, nandu y pinguinos: ¡el 25%!"


def test_folded_words_drop_punctuation_and_extra_spaces():
    assert folded_words("¡BAJÁ!  ") == "baja"
    assert folded_words("Quiero   hablar, con un AGENTE.") == "quiero hablar con un agente"
