"""Rules compiled for matching, and the match itself: plain data in, plain data out (no queries).

A workspace's active rules are compiled once (keywords folded, patterns compiled on the safe-regex
engine) and kept per process until the workspace's rules version changes (services bumps it in the
shared cache on every write), so a message costs one cache read plus the matching.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass

from django.core.cache import cache

from apps.alerts.models import AlertRule
from apps.alerts.sentiment import Mood, sentiment_score
from apps.assistant.language import folded_words
from chatbot.safe_regex import RegexTimeout, UserRegex, compile_user_regex

logger = logging.getLogger(__name__)

K = AlertRule.Kind
# Conditions another part of the pipeline reports (`Facts.signals`); text rules match the text.
SIGNALS = frozenset({K.ASKED_FOR_PERSON, K.PROVIDERS_FAILED, K.NO_ANSWER, K.DELIVERY_FAILURES})
# Each match of a user's pattern may take this long at most; a rule that runs out does not match.
REGEX_BUDGET = 0.02  # seconds
# The sentiment of a message is read from its start: a complaint says itself early, and scoring
# grows with the length (WhatsApp allows 4,096 characters).
SENTIMENT_CHARS = 1000


@dataclass(frozen=True)
class Facts:
    """What conversations hands over about one event: a customer message, or a condition it saw."""

    workspace_id: int
    channel_id: int | None
    conversation_id: int | None
    conversation_status: str
    message_id: int | None = None
    text: str = ""
    signals: frozenset[str] = frozenset()
    detail: str = ""  # said in the alert's summary for a signal (a rate, minutes waited)
    waited_minutes: int = 0  # no_answer: how long the customer has waited for a person
    window_minutes: int = 0  # delivery_failures: the window measured ...
    sent_count: int = 0  # ... the sends settled in it ...
    failure_rate: float = 0.0  # ... and the share of them that failed
    # Set when the workspace's LLM scored the message (the llm queue, after processing): only the
    # sentiment rules that asked for the LLM are evaluated then, and only then.
    llm_score: float | None = None


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    kind: str
    severity: str
    channels: frozenset[int]
    statuses: frozenset[str]
    cooldown_minutes: int
    hand_to_person: bool
    minutes: int = 0
    rate: float = 0.0
    min_count: int = 0
    threshold: float = 0.0
    by_llm: bool = False  # a sentiment rule scored by the workspace's LLM
    notify_email: bool = False
    webhook: bool = False
    keywords: tuple[str, ...] = ()  # folded, padded with spaces: " word " in " text "
    exclusions: tuple[str, ...] = ()
    regex: UserRegex | None = None

    def in_scope(self, facts: Facts) -> bool:
        if self.channels and facts.channel_id not in self.channels:
            return False
        if facts.conversation_id is None:  # a number's condition: no conversation to scope by
            return True
        return not self.statuses or facts.conversation_status in self.statuses

    def match(self, facts: Facts, folded: str, mood: Mood | None = None) -> str | None:
        """What matched (for the alert's summary), or None. `folded` is the text's folded words, padded;
        `mood` the text's sentiment (scored once per message, by `matches`, when a rule needs it)."""
        if self.kind in SIGNALS:
            if self.kind not in facts.signals:
                return None
            if self.kind == K.NO_ANSWER and facts.waited_minutes < self.minutes:
                return None
            if self.kind == K.DELIVERY_FAILURES and not (
                facts.window_minutes == self.minutes
                and facts.sent_count >= max(self.min_count, 1)
                and facts.failure_rate > self.rate
            ):
                return None
            return facts.detail or self.kind
        if not facts.text:
            return None
        if self.kind == K.KEYWORD:
            if any(word in folded for word in self.exclusions):
                return None
            return next((word.strip() for word in self.keywords if word in folded), None)
        if self.kind == K.REGEX and self.regex is not None:
            try:
                found = self.regex.search(facts.text)
            except RegexTimeout:
                logger.warning("alert rule %s: pattern ran out of time; no match", self.id)
                return None
            return card_numbers_masked(found.group(0))[:100] if found is not None else None
        if self.by_llm:
            if facts.llm_score is None or facts.llm_score >= self.threshold:
                return None
            return f"sentiment {facts.llm_score:+.2f} (LLM)"
        if self.kind == K.SENTIMENT and mood is not None and mood.score < self.threshold:
            # Lexicon terms only: the summary never quotes the customer.
            return f"sentiment {mood.score:+.2f}" + (f": {', '.join(mood.cues)}" if mood.cues else "")
        return None


# 13 to 19 digits, maybe grouped by spaces or dashes: the shape of a payment card number.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def card_numbers_masked(text: str) -> str:
    """`text` with anything shaped like a card number cut to its last four digits: a summary travels to
    e-mail, webhooks and the dashboard, and a broad pattern can catch what a customer should not have
    written in a chat."""
    return _CARD.sub(lambda m: "•••• " + re.sub(r"\D", "", m.group(0))[-4:], text)


def _padded(phrases: list[str]) -> tuple[str, ...]:
    folded = (folded_words(str(phrase)) for phrase in phrases)
    return tuple(f" {phrase} " for phrase in folded if phrase)


def rule_compile(rule: AlertRule) -> CompiledRule:
    regex = None
    if rule.kind == K.REGEX and rule.pattern:
        regex = compile_user_regex(rule.pattern, timeout=REGEX_BUDGET)
    return CompiledRule(
        id=rule.pk,
        name=rule.name,
        kind=rule.kind,
        severity=rule.severity,
        channels=frozenset(int(c) for c in rule.channels),
        statuses=frozenset(str(s) for s in rule.statuses),
        cooldown_minutes=rule.cooldown_minutes,
        hand_to_person=rule.hand_to_person,
        minutes=rule.minutes,
        rate=rule.rate,
        min_count=rule.min_count,
        threshold=rule.threshold,
        by_llm=rule.kind == K.SENTIMENT and rule.classifier == AlertRule.Classifier.LLM,
        notify_email=bool(rule.notify_emails),
        webhook=bool(rule.webhook_url),
        keywords=_padded(rule.keywords),
        exclusions=_padded(rule.exclusions),
        regex=regex,
    )


def matches(rules: tuple[CompiledRule, ...], facts: Facts) -> list[tuple[CompiledRule, str]]:
    """The rules `facts` meet, each with what matched, in the rules' order."""
    folded = f" {folded_words(facts.text)} " if facts.text else ""
    mood: Mood | None = None
    found = []
    for rule in rules:
        if rule.by_llm != (facts.llm_score is not None) or not rule.in_scope(facts):
            continue
        if rule.kind == K.SENTIMENT and not rule.by_llm and mood is None and facts.text:
            mood = sentiment_score(facts.text[:SENTIMENT_CHARS])
        what = rule.match(facts, folded, mood)
        if what is not None:
            found.append((rule, what))
    return found


def llm_sentiment_wanted(rules: tuple[CompiledRule, ...], facts: Facts) -> bool:
    """Whether a sentiment rule in scope waits for the workspace's LLM to score this message."""
    return bool(facts.text) and facts.llm_score is None and any(r.by_llm and r.in_scope(facts) for r in rules)


# --- the per-process cache of compiled rules --------------------------------------------------------
def _version_key(workspace_id: int) -> str:
    return f"alerts:rules-version:{workspace_id}"


_compiled: dict[int, tuple[object, tuple[CompiledRule, ...]]] = {}
_lock = threading.Lock()


def rules_version_bump(workspace_id: int) -> None:
    """Every process recompiles the workspace's rules on its next message (called after commit).

    The version is a random token, not a counter: a cache that lost the key (evicted, restarted)
    gets a new token that no process holds, so nobody keeps matching stale rules.
    """
    cache.set(_version_key(workspace_id), uuid.uuid4().hex, timeout=None)


def workspace_rules(workspace_id: int) -> tuple[CompiledRule, ...]:
    """The workspace's active rules, compiled; recompiled when the shared version moved."""
    key = _version_key(workspace_id)
    version = cache.get(key)
    if version is None:
        cache.add(key, uuid.uuid4().hex, timeout=None)
        version = cache.get(key)
    held = _compiled.get(workspace_id)
    if held is not None and held[0] == version:
        return held[1]
    compiled = []
    for rule in AlertRule.objects.filter(workspace_id=workspace_id, is_active=True).order_by("pk"):
        try:
            compiled.append(rule_compile(rule))
        except Exception:  # a rule stored before a tighter check must not stop the others
            logger.warning("alert rule %s does not compile; skipped", rule.pk, exc_info=True)
    rules = tuple(compiled)
    with _lock:
        _compiled[workspace_id] = (version, rules)
    return rules


def rules_forget() -> None:
    """Drop every compiled rule of this process (tests)."""
    with _lock:
        _compiled.clear()
