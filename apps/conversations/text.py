"""WhatsApp's limit on a text message, and splitting a longer text into messages that fit.

Conversations splits a reply into one queued row per part; the Cloud transport splits again only a
text that reaches it whole from elsewhere. Both use this one splitter with the same limit, so a queued
part is never split a second time.
"""

from __future__ import annotations

import re

TEXT_LIMIT = 4096  # characters in the body of one WhatsApp text message

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_WORD = re.compile(r"\s+")


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in parts of at most `limit` characters, cut at the last paragraph break, else sentence
    end, else space, in each part's second half (a word is cut only when it alone is too long).

    The whitespace at each cut is dropped (it separates the messages); every other character stays.
    A text within the limit comes back whole and unchanged, an empty one as one empty part.
    """
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        end, resume = _cut(rest, limit)
        parts.append(rest[:end])
        rest = rest[resume:]
    if rest or not parts:
        parts.append(rest)
    return parts


def _cut(text: str, limit: int) -> tuple[int, int]:
    """Where the first part of `text` ends and the next begins."""
    window = text[: limit + 1]  # a separator starting right at the limit still counts
    for pattern, earliest in ((_PARAGRAPH, limit // 2), (_SENTENCE, limit // 2), (_WORD, 1)):
        starts = [match for match in pattern.finditer(window) if match.start() >= earliest]
        if not starts:
            continue
        last = starts[-1]
        end = len(text[: last.start()].rstrip())
        if end == 0:
            continue
        resume = last.end()
        while resume < len(text) and text[resume].isspace():
            resume += 1
        return end, resume
    return limit, limit
