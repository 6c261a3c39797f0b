"""Keeps the inbox search's words (`ConversationSearch`) up to date from the message table.

An indexer, not a write on every message's path: the webhook and the senders stay as fast as they are,
and the search still finds a message from the moment it is stored, because messages after the
cursor are searched directly (selectors.conversation_list). Each run (every few seconds, by beat)
reads the messages after the cursor in id order and merges their words into their conversations'
rows; a row is rewritten only when a message brings a word its conversation had not used.

Ids are handed out before commit, so a smaller id can become visible after a larger one: the cursor
stops before any message younger than SETTLE (a message's INSERT commits within milliseconds; 10 s
is far beyond that). It also stops before a customer's message not processed yet, whose conversation
comes with its processing (in the same transaction), for up to STRAGGLER; one processed later than
that, or set aside and shown in a conversation afterwards, is indexed there (message_index_late). History stored before the index existed is indexed backwards, newest first,
below `backfill_below`; the search reads the messages directly until it is done.

PostgreSQL only: on SQLite (the embedded mode) the search reads the messages and this does nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from apps.conversations.models import ConversationSearch, Message, SearchIndexCursor

SETTLE = timedelta(seconds=10)
# A customer's message gets its conversation when it is processed: until then it holds the cursor
# (its words would have no row to go to), unless it has waited this long (workers down); then the
# processing indexes it itself (message_index_late).
STRAGGLER = timedelta(hours=1)
FORWARD_BATCH = 5_000  # messages per forward step
BACKFILL_IDS = 20_000  # ids per backfill step
RUN_BUDGET = 20.0  # seconds of work per run; the next run goes on where this one stopped

# Each message's words under the three configurations the search queries (selectors.search_query);
# stripped (positions are not used) and merged per conversation as a set of words.
MESSAGE_WORDS = (
    "strip(to_tsvector('spanish', m.body) || to_tsvector('english', m.body)"
    " || to_tsvector('chatbot_simple', m.body))"
)
# Built from constants only; the ids are parameters.
MERGE_SQL = f"""
WITH words AS (
    SELECT m.conversation_id, m.workspace_id, w.lexeme
    FROM conversations_message m, unnest({MESSAGE_WORDS}) AS w
    WHERE m.id > %s AND m.id <= %s AND m.conversation_id IS NOT NULL AND m.body <> ''
), documents AS (
    SELECT conversation_id, workspace_id, array_to_tsvector(array_agg(DISTINCT lexeme)) AS document
    FROM words GROUP BY conversation_id, workspace_id
)
INSERT INTO conversations_conversationsearch AS s (conversation_id, workspace_id, document, updated_at)
SELECT conversation_id, workspace_id, document, now() FROM documents
ON CONFLICT (conversation_id) DO UPDATE
    SET document = s.document || EXCLUDED.document, updated_at = EXCLUDED.updated_at
    WHERE NOT (tsvector_to_array(EXCLUDED.document) <@ tsvector_to_array(s.document))
"""  # noqa: S608


@dataclass
class IndexRun:
    messages: int = 0  # forward, read after the cursor
    backfilled_ids: int = 0  # backwards, id range covered
    conversations_written: int = 0
    skipped: bool = False  # another run holds the cursor
    behind: bool = False  # stopped at the time budget with work left


def _merge(after: int, upto: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(MERGE_SQL, [after, upto])
        return max(int(cursor.rowcount), 0)


def _forward_bound(after: int, now: datetime) -> tuple[int, int, bool]:
    """(last id to index, how many messages, whether more are waiting) of the next forward step."""
    rows = list(
        Message.objects.filter(pk__gt=after)
        .order_by("pk")
        .values_list("pk", "created_at", "direction", "conversation_id", "processed_at")[:FORWARD_BATCH]
    )
    upto, count = after, 0
    for pk, created_at, direction, conversation_id, processed_at in rows:
        if created_at >= now - SETTLE:
            return upto, count, False
        # A customer's message not processed yet (an outbound one without a conversation never gets one).
        waiting = direction == Message.Direction.INBOUND and conversation_id is None and processed_at is None
        if waiting and created_at >= now - STRAGGLER:
            return upto, count, False
        upto, count = pk, count + 1
    return upto, count, len(rows) == FORWARD_BATCH


def message_index_late(*, message_id: int) -> None:
    """The words of a message given its conversation after the indexer went past it (a message set
    aside, or processed more than STRAGGLER after it arrived), merged now."""
    if connection.vendor != "postgresql":
        return
    cursor = SearchIndexCursor.objects.filter(id=1).values_list("last_message_id", "backfill_below").first()
    if cursor is None:
        return
    last, backfill_below = cursor
    if backfill_below <= message_id <= last:  # past the cursor, and not left to the backfill
        _merge(message_id - 1, message_id)


def _cursor_locked() -> SearchIndexCursor | None:
    SearchIndexCursor.objects.get_or_create(id=1)
    return SearchIndexCursor.objects.select_for_update(skip_locked=True).filter(id=1).first()


def _step(now: datetime, run: IndexRun) -> bool:
    """One forward step, else one backfill step, under the cursor's lock. True if more work is left."""
    with transaction.atomic():
        cursor = _cursor_locked()
        if cursor is None:
            run.skipped = True
            return False
        upto, count, more = _forward_bound(cursor.last_message_id, now)
        if count:
            run.conversations_written += _merge(cursor.last_message_id, upto)
            run.messages += count
            cursor.last_message_id = upto
            cursor.save(update_fields=["last_message_id", "updated_at"])
            return more or cursor.backfill_below > 0
        if cursor.backfill_below > 0:
            low = max(cursor.backfill_below - BACKFILL_IDS, 0)  # ids low .. backfill_below - 1
            run.conversations_written += _merge(low - 1, cursor.backfill_below - 1)
            run.backfilled_ids += cursor.backfill_below - low
            cursor.backfill_below = low
            cursor.save(update_fields=["backfill_below", "updated_at"])
            return low > 0
        return False


def search_index_update(*, budget: float = RUN_BUDGET, now: datetime | None = None) -> IndexRun:
    """Index what is new, then some history, for at most `budget` seconds."""
    run = IndexRun()
    if connection.vendor != "postgresql":
        return run
    started = time.monotonic()
    moment = now or timezone.now()
    while _step(moment, run):
        if time.monotonic() - started >= budget:
            run.behind = True
            break
    return run


def search_index_rebuild() -> None:
    """Forget every conversation's words and index the whole message table again (backwards, by the
    runs that follow); the search reads the messages directly meanwhile. For a changed configuration
    or words that must go (a message's text removed)."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic():
        SearchIndexCursor.objects.get_or_create(id=1)
        cursor = SearchIndexCursor.objects.select_for_update().get(id=1)
        newest = Message.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        ConversationSearch.objects.all().delete()
        cursor.last_message_id = newest
        cursor.backfill_below = newest + 1 if newest else 0
        cursor.save()
