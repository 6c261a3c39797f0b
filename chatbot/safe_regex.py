"""Regular expressions written by users (alert rules): bounded in size and in matching time.

A pattern like `(a+)+$` takes exponential time on "aaaa…!" in a backtracking engine. The
`regex` package checks a time budget while it matches (`timeout=`), so a hostile pattern costs
at most the budget and then fails with a clear error instead of pinning a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import regex

from chatbot.exceptions import ValidationFailed

MAX_PATTERN_LENGTH = 500
MAX_SUBJECT_LENGTH = 100_000
DEFAULT_TIMEOUT = 0.1  # seconds per search


class RegexTimeout(ValidationFailed):
    code = "regex_timeout"


@dataclass(frozen=True)
class UserRegex:
    pattern: str
    compiled: Any
    timeout: float

    def search(self, text: str) -> Any:
        """The first match or None; RegexTimeout when the budget runs out."""
        try:
            return self.compiled.search(text[:MAX_SUBJECT_LENGTH], timeout=self.timeout)
        except TimeoutError as exc:
            raise RegexTimeout(
                f"The pattern took longer than {self.timeout:g} s to match; simplify it."
            ) from exc

    def matches(self, text: str) -> bool:
        return self.search(text) is not None


def compile_user_regex(
    pattern: str, *, ignore_case: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> UserRegex:
    """Compile a user's pattern, or ValidationFailed (too long, or not a valid expression)."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValidationFailed(
            f"The pattern is longer than {MAX_PATTERN_LENGTH} characters.", code="regex_too_long"
        )
    flags = regex.IGNORECASE if ignore_case else 0
    try:
        compiled = regex.compile(pattern, flags | regex.VERSION0)
    except regex.error as exc:
        raise ValidationFailed(f"Not a valid regular expression: {exc}", code="regex_invalid") from exc
    return UserRegex(pattern=pattern, compiled=compiled, timeout=timeout)
