from __future__ import annotations

import time

import pytest

from chatbot.exceptions import ValidationFailed
from chatbot.safe_regex import MAX_PATTERN_LENGTH, RegexTimeout, compile_user_regex


def test_a_plain_pattern_matches_case_insensitively():
    rule = compile_user_regex(r"\b(refund|reembolso)\b")

    assert rule.matches("I want a REFUND now")
    assert not rule.matches("thanks")


def test_nested_quantifiers_finish_within_the_budget():
    subject = "a" * 30 + "!"
    started = time.monotonic()

    assert (
        compile_user_regex(r"(a+)+$", timeout=0.2).matches(subject) is False
    )  # the engine short-cuts this one
    with pytest.raises(RegexTimeout, match="longer than 0.2 s"):
        compile_user_regex(r"(a|aa)+$", timeout=0.2).search(subject)  # this one backtracks exponentially

    assert (
        time.monotonic() - started < 15.0
    )  # unbounded backtracking would run for hours; slack for a loaded CI


def test_too_long_and_invalid_patterns_are_refused_with_a_clear_error():
    with pytest.raises(ValidationFailed) as too_long:
        compile_user_regex("a" * (MAX_PATTERN_LENGTH + 1))
    with pytest.raises(ValidationFailed) as invalid:
        compile_user_regex("(unclosed")

    assert too_long.value.code == "regex_too_long"
    assert invalid.value.code == "regex_invalid"
