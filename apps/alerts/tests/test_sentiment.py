"""The offline sentiment scorer: its rules one by one, and its quality on the held-out evaluation set."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.alerts.models import AlertRule
from apps.alerts.sentiment import NEGATIVE_BELOW, lexicon_load, sentiment_score

EVAL = Path(__file__).with_name("sentiment_eval")


def _labelled(part: str) -> list[tuple[str, bool, str]]:
    rows = []
    for line in (EVAL / f"{part}.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, label, text = line.split("\t")
            assert label in ("neg", "not"), line
            rows.append((language, label == "neg", text))
    return rows


def _accuracy(rows: list[tuple[str, bool, str]]) -> float:
    right = sum((sentiment_score(text).score < NEGATIVE_BELOW) == negative for _, negative, text in rows)
    return right / len(rows)


def test_the_evaluation_set_has_200_messages_in_both_languages_and_a_held_out_part():
    dev, held_out = _labelled("dev"), _labelled("heldout")

    assert len(dev) + len(held_out) >= 200 and len(held_out) >= 100
    for rows in (dev, held_out):
        assert {language for language, _, _ in rows} == {"es", "en"}
        assert 0.3 < sum(negative for _, negative, _ in rows) / len(rows) < 0.7
    assert not {text for *_, text in dev} & {text for *_, text in held_out}


def test_held_out_accuracy_negative_vs_not_is_at_least_0_85():
    held_out = _labelled("heldout")

    assert _accuracy(held_out) >= 0.85
    for language in ("es", "en"):
        assert _accuracy([row for row in held_out if row[0] == language]) >= 0.85


@pytest.mark.parametrize(
    "text",
    [
        "No funciona",
        "no me funciona la tarjeta",
        "Nadie me contesta",
        "My order never arrived",
        "It doesn't work",
        "Todavía no he recibido nada",
        "sigue sin funcionar",
        "Llevo dos semanas esperando",
        "😡😡",
        "No estoy contento",
        "Genial, otra vez sin luz. Gracias por nada",
    ],
)
def test_complaints_are_negative(text):
    assert sentiment_score(text).score < NEGATIVE_BELOW


@pytest.mark.parametrize(
    "text",
    [
        "¿Funciona con iPhone?",
        "¿Qué pasa si no funciona?",
        "What if it doesn't arrive?",
        "No hay problema",
        "no problem, thanks",
        "No, gracias",
        "Buenas tardes",
        "Ya funciona, gracias!",
        "",
        "👍",
    ],
)
def test_questions_courtesy_and_denied_problems_are_not_negative(text):
    assert sentiment_score(text).score >= NEGATIVE_BELOW


def test_intensifiers_capitals_and_exclamations_make_it_stronger():
    plain = sentiment_score("servicio malo").score

    assert sentiment_score("servicio muy malo").score < plain
    assert sentiment_score("servicio MALO").score < plain
    assert sentiment_score("servicio malo!!!").score < plain
    assert sentiment_score("servicio maloooo").score < plain
    assert sentiment_score("servicio algo malo").score > plain


def test_what_follows_but_weighs_more():
    assert sentiment_score("Muy amables, pero el pedido llegó roto").score < NEGATIVE_BELOW
    assert sentiment_score("Llegó roto, pero me lo cambiaron rápido y muy amables").score > NEGATIVE_BELOW


def test_the_cues_are_the_lexicon_s_negative_terms_worst_first():
    mood = sentiment_score("La app no funciona y el servicio es horrible, estoy harta")

    assert mood.cues == ("horrible", "harta", "no funciona")
    assert sentiment_score("Muchas gracias").cues == ()


def test_a_term_listed_twice_in_the_lexicon_is_refused(tmp_path):
    lexicon = tmp_path / "lexicon.tsv"
    lexicon.write_text("# a comment\nmalo\t-2\nMALO\t-1\n", encoding="utf-8")

    with pytest.raises(ValueError, match="listed twice"):
        lexicon_load(lexicon)


def test_a_new_rule_s_threshold_is_the_evaluated_cut_off():
    assert AlertRule._meta.get_field("threshold").default == NEGATIVE_BELOW
