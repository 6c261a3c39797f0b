"""Matching without the database: compiled rules against plain facts."""

from __future__ import annotations

from typing import Any

import pytest

from apps.alerts.models import AlertRule
from apps.alerts.rules import Facts, llm_sentiment_wanted, matches, rule_compile
from apps.alerts.sentiment import Mood
from chatbot.exceptions import ValidationFailed

K = AlertRule.Kind


def _rule(pk: int = 1, **fields: object) -> AlertRule:
    values: dict[str, object] = {
        "name": f"r{pk}",
        "kind": K.KEYWORD,
        "severity": "high",
        "keywords": [],
        "exclusions": [],
        "channels": [],
        "statuses": [],
        "notify_emails": [],
        **fields,
    }
    return AlertRule(pk=pk, workspace_id=1, **values)


def _facts(text: str = "", **fields: Any) -> Facts:
    values: dict[str, Any] = {
        "workspace_id": 1,
        "channel_id": 7,
        "conversation_id": 3,
        "conversation_status": "open",
        "text": text,
        **fields,
    }
    return Facts(**values)


def _found(rule: AlertRule, facts: Facts) -> list[str]:
    return [what for _, what in matches((rule_compile(rule),), facts)]


@pytest.mark.parametrize(
    "text",
    ["Quiero un REEMBOLSO ya", "reembolsó?", "¡Reembolso!", "mi  reembolso,por favor"],
)
def test_a_keyword_matches_whole_words_without_case_or_accents(text):
    assert _found(_rule(keywords=["reembolso"]), _facts(text)) == ["reembolso"]


@pytest.mark.parametrize("text", ["reembolsos", "prereembolso", "sin nada"])
def test_a_keyword_does_not_match_inside_another_word(text):
    assert _found(_rule(keywords=["reembolso"]), _facts(text)) == []


def test_a_phrase_matches_its_words_in_order_and_the_first_keyword_found_is_named():
    rule = _rule(keywords=["devolver el dinero", "Estafa"])

    assert _found(rule, _facts("¿Me pueden DEVOLVER el dinero?")) == ["devolver el dinero"]
    assert _found(rule, _facts("el dinero devolver")) == []
    assert _found(rule, _facts("esto es una estafa")) == ["estafa"]


def test_an_exclusion_vetoes_the_match():
    rule = _rule(keywords=["cancelar"], exclusions=["no quiero cancelar"])

    assert _found(rule, _facts("quiero cancelar el pedido")) == ["cancelar"]
    assert _found(rule, _facts("No quiero cancelar, solo cambiar la fecha")) == []


def test_a_regex_rule_matches_without_case_and_names_what_it_matched():
    rule = _rule(kind=K.REGEX, pattern=r"pedido\s*#?\d{4,}")

    assert _found(rule, _facts("Mi PEDIDO #88123 no llegó")) == ["PEDIDO #88123"]
    assert _found(rule, _facts("mi pedido no llegó")) == []


def test_a_card_number_a_pattern_caught_is_cut_to_its_last_four_digits():
    rule = _rule(kind=K.REGEX, pattern=r"tarjeta.*")

    assert _found(rule, _facts("tarjeta 4111 1111 1111 1234 caduca 12/27")) == [
        "tarjeta •••• 1234 caduca 12/27"
    ]
    assert _found(rule, _facts("tarjeta 4111-1111-1111-1234")) == ["tarjeta •••• 1234"]
    # Shorter numbers (an order, a phone) stay as they are.
    assert _found(rule, _facts("tarjeta regalo del pedido 88123, llamar al 612345678")) == [
        "tarjeta regalo del pedido 88123, llamar al 612345678"
    ]


def test_a_pattern_that_runs_out_of_time_does_not_match_and_does_not_raise():
    rule = _rule(kind=K.REGEX, pattern=r"(a+)+$")

    assert _found(rule, _facts("a" * 40 + "!")) == []


def test_a_pattern_that_is_not_valid_is_refused_when_compiled():
    with pytest.raises(ValidationFailed):
        rule_compile(_rule(kind=K.REGEX, pattern="(unclosed"))


def test_scope_by_channel_and_conversation_status():
    rule = _rule(keywords=["ayuda"], channels=[7], statuses=["pending_human"])

    assert _found(rule, _facts("ayuda", conversation_status="pending_human")) == ["ayuda"]
    assert _found(rule, _facts("ayuda", conversation_status="open")) == []
    assert _found(rule, _facts("ayuda", channel_id=8, conversation_status="pending_human")) == []


def test_a_condition_matches_its_signal_only_and_text_rules_ignore_signals():
    asked = _rule(kind=K.ASKED_FOR_PERSON)
    keyword = _rule(pk=2, keywords=["agente"])

    assert _found(asked, _facts("agente", signals=frozenset({"asked_for_person"}))) == ["asked_for_person"]
    assert _found(asked, _facts("agente")) == []
    assert _found(keyword, _facts("", signals=frozenset({"asked_for_person"}))) == []


def test_no_answer_matches_once_the_customer_waited_the_rule_s_minutes():
    rule = _rule(kind=K.NO_ANSWER, minutes=20)
    signal = frozenset({"no_answer"})

    assert _found(rule, _facts(signals=signal, waited_minutes=19)) == []
    assert _found(rule, _facts(signals=signal, waited_minutes=20, detail="waited")) == ["waited"]


def test_delivery_failures_match_above_the_rate_with_enough_sends_in_the_rule_s_window():
    rule = _rule(kind=K.DELIVERY_FAILURES, minutes=15, rate=0.2, min_count=10)
    signal = frozenset({"delivery_failures"})

    def found(**fields: Any) -> list[str]:
        return _found(rule, _facts(signals=signal, conversation_id=None, conversation_status="", **fields))

    assert found(window_minutes=15, sent_count=10, failure_rate=0.3, detail="3/10") == ["3/10"]
    assert found(window_minutes=15, sent_count=9, failure_rate=0.5) == []
    assert found(window_minutes=15, sent_count=10, failure_rate=0.2) == []
    assert found(window_minutes=60, sent_count=10, failure_rate=0.3) == []


def test_a_sentiment_rule_matches_a_message_below_its_threshold_and_names_the_terms_not_the_text():
    rule = _rule(kind=K.SENTIMENT, threshold=-0.3)

    [found] = _found(rule, _facts("Esto es una vergüenza, la app no funciona desde ayer 😡"))

    assert found.startswith("sentiment -0.") and found.endswith(": verguenza, 😡, no funciona")
    assert "desde ayer" not in found
    assert _found(rule, _facts("Gracias, todo perfecto")) == []
    assert _found(_rule(kind=K.SENTIMENT, threshold=-0.9), _facts("no funciona")) == []


def test_the_text_is_scored_once_for_every_sentiment_rule_and_not_at_all_without_one(monkeypatch):
    from apps.alerts import rules as rules_module

    calls: list[str] = []
    real = rules_module.sentiment_score

    def counted(text: str) -> Mood:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(rules_module, "sentiment_score", counted)
    two = (rule_compile(_rule(1, kind=K.SENTIMENT, threshold=-0.3)), rule_compile(_rule(2, kind=K.SENTIMENT)))

    assert len(matches(two, _facts("Fatal, nunca más"))) == 2
    assert len(calls) == 1
    matches((rule_compile(_rule(3, keywords=["fatal"])),), _facts("Fatal"))
    matches(two, _facts("", signals=frozenset({"asked_for_person"})))
    assert len(calls) == 1


def test_a_long_message_is_scored_on_its_start():
    rule = _rule(kind=K.SENTIMENT, threshold=-0.3)

    assert _found(rule, _facts("hola " * 300 + "es una estafa")) == []
    assert _found(rule, _facts("es una estafa " + "hola " * 300)) != []


def test_an_llm_sentiment_rule_waits_for_the_llm_s_score_and_the_others_do_not_match_it_twice():
    by_llm = rule_compile(_rule(1, kind=K.SENTIMENT, classifier="llm", threshold=-0.3))
    lexicon = rule_compile(_rule(2, kind=K.SENTIMENT, threshold=-0.3))
    keyword = rule_compile(_rule(3, keywords=["estafa"]))
    rules = (by_llm, lexicon, keyword)
    processed = _facts("Es una estafa")
    scored = _facts("Es una estafa", llm_score=-0.8)

    assert [rule.id for rule, _ in matches(rules, processed)] == [2, 3]
    assert llm_sentiment_wanted(rules, processed) and not llm_sentiment_wanted(rules, scored)
    assert matches(rules, scored) == [(by_llm, "sentiment -0.80 (LLM)")]
    assert matches(rules, _facts("Es una estafa", llm_score=0.0)) == []
    assert not llm_sentiment_wanted((lexicon, keyword), processed)
    assert not llm_sentiment_wanted(rules, _facts(""))  # nothing to score
