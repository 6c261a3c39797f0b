"""Reads for conversations, messages, contacts and the outbound queue.

Every read of tenant data takes the workspace it reads in, so no door can forget the filter: lists
return that workspace's rows only, and the `*_get` helpers (like Zulip's `access_*_by_id`) answer
NotFound alike for an id that does not exist and for another workspace's, so existence never leaks.
A selector that takes an object (a conversation, a message) trusts it was obtained through one of these.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TypeVar

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    Func,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.conversations.models import (
    REACTION_ORDER,
    CannedReply,
    Contact,
    Conversation,
    ConversationSearch,
    InternalNote,
    Message,
    SearchIndexCursor,
    SendAttempt,
)
from apps.conversations.transport import MediaFile, transport_for
from chatbot.exceptions import NotFound

M = TypeVar("M", bound=Model)
ASSIGNEE_ME = "me"
ASSIGNEE_NONE = "none"
WINDOW = timedelta(hours=24)  # Meta's customer service window
REACTION = "reaction"  # Message.handled_as of a customer's reaction (inbound processing)
SEARCH_WORDS = re.compile(r"[^\W_]+")  # letters and digits: nothing that means something in a tsquery
SEARCH_MAX_WORDS = 8


def window_open(*, conversation: Conversation | None, now: datetime | None = None) -> bool:
    """Whether free-form messages may be sent: the customer wrote within the last 24 hours.

    Closed for a message without a conversation (nothing was ever received).
    """
    last = conversation.last_inbound_at if conversation else None
    return last is not None and (now or timezone.now()) - last < WINDOW


def _found(queryset: QuerySet[M], pk: int) -> M:
    row = queryset.filter(pk=pk).first()
    if row is None:
        raise NotFound("Not found.")
    return row


def conversation_list(
    *,
    workspace: Workspace,
    user_id: int,
    status: str = "",
    assignee: str = "",
    channel: int | None = None,
    q: str = "",
) -> QuerySet[Conversation]:
    """Newest activity first. `assignee` is a user id, "me" (`user_id`) or "none" (unassigned)."""
    conversations = Conversation.objects.filter(workspace=workspace).select_related("contact", "assignee")
    if status:
        conversations = conversations.filter(status=status)
    if assignee == ASSIGNEE_NONE:
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee:
        conversations = conversations.filter(
            assignee_id=user_id if assignee == ASSIGNEE_ME else int(assignee)
        )
    if channel is not None:
        conversations = conversations.filter(channel_id=channel)
    if q := q.strip():
        conversations = conversations.filter(_named(workspace, q) | _said(workspace, q))
    return conversations.order_by(F("last_message_at").desc(nulls_last=True), "-pk")


def _named(workspace: Workspace, q: str) -> Q:
    """The customer's name, WhatsApp profile name or number contains `q`; on PostgreSQL accents and
    case ignored ("lucia" finds "Lucía") through a trigram index (migration 0013)."""
    number = q.removeprefix("+")
    if connection.vendor != "postgresql":
        return (
            Q(contact__name__icontains=q)
            | Q(contact__profile_name__icontains=q)
            | Q(contact__wa_id__icontains=number)
        )
    contacts = (
        Contact.objects.filter(workspace=workspace)
        .alias(
            key=Func(
                F("name"),
                F("profile_name"),
                F("wa_id"),
                function="chatbot_contact_key",
                output_field=TextField(),
            )
        )
        .filter(key__contains=Func(Value(number), function="chatbot_fold", output_field=TextField()))
    )
    return Q(contact_id__in=contacts.values("pk"))


def search_query(q: str) -> SearchQuery | None:
    """Every word of `q`, each as a Spanish or English stem or the start of a word as written
    (accents ignored): "devoluciones" finds "devolución", "devolucion" finds "devoluciones", "612" a
    number. None when `q` has no word."""
    query: SearchQuery | None = None
    for word in SEARCH_WORDS.findall(q)[:SEARCH_MAX_WORDS]:
        either = (
            SearchQuery(word, config="spanish")
            | SearchQuery(word, config="english")
            | SearchQuery(f"{word}:*", config="chatbot_simple", search_type="raw")
        )
        query = either if query is None else query & either
    return query


# The words of one message, as search_index.MESSAGE_WORDS puts them in a conversation's row.
MESSAGE_WORDS = (
    SearchVector("body", config="spanish")
    + SearchVector("body", config="english")
    + SearchVector("body", config="chatbot_simple")
)


def _said(workspace: Workspace, q: str) -> Q:
    """Conversations with a message matching `q`: the index for what it covers, the messages after
    its cursor read directly. Until the history is indexed (and on SQLite), the messages themselves."""
    cursor = None
    if connection.vendor == "postgresql":
        cursor = SearchIndexCursor.objects.filter(id=1).first() or SearchIndexCursor()
    if cursor is None or cursor.backfill_below:
        return Q(Exists(Message.objects.filter(conversation=OuterRef("pk"), body__icontains=q)))
    query = search_query(q)
    if query is None:
        return Q(pk__in=[])
    indexed = ConversationSearch.objects.filter(workspace=workspace, document=query)
    recent = (
        Message.objects.filter(pk__gt=cursor.last_message_id, workspace=workspace)
        .annotate(words=MESSAGE_WORDS)
        .filter(words=query)
    )
    return Q(pk__in=indexed.values("conversation_id")) | Q(pk__in=recent.values("conversation_id"))


def conversation_get(*, workspace: Workspace, pk: int) -> Conversation:
    return _found(Conversation.objects.filter(workspace=workspace).select_related("contact", "assignee"), pk)


def with_last_send(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Each row with its last send attempt's reason and detail ('' once accepted, NULL without any),
    in the same query: read by Message.failure_reason_shown and last_error_shown, never one per row."""
    last = SendAttempt.objects.filter(message_id=OuterRef("pk")).order_by("-number")

    def shown(field: str) -> Subquery:
        value = Case(When(outcome=SendAttempt.Outcome.ACCEPTED, then=Value("")), default=F(field))
        return Subquery(last.annotate(shown=value).values("shown")[:1])

    return messages.annotate(last_send_reason=shown("reason"), last_send_detail=shown("detail"))


def with_reactions(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Each row with the customer's current reaction on it (`reaction_emoji`, '' or NULL without one,
    and `reaction_at`), in the same query: read by Message.reaction_shown, never one query per row."""
    latest = (
        Message.objects.filter(
            channel_id=OuterRef("channel_id"), reply_to_wamid=OuterRef("wamid"), handled_as=REACTION
        )
        .exclude(reply_to_wamid="")
        .order_by(*REACTION_ORDER)
    )
    return messages.annotate(
        reaction_emoji=Subquery(latest.values("body")[:1]),
        reaction_at=Subquery(
            latest.annotate(at=Coalesce("sent_by_customer_at", "created_at")).values("at")[:1]
        ),
    )


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """The thread, oldest first. A customer's reaction is shown on the message it reacts to (that
    row's `reaction_emoji`), not as a row of its own, when that message is in this conversation; a
    reaction to a message elsewhere (an earlier conversation, or one never stored) stays a row."""
    target_here = Message.objects.filter(
        channel_id=OuterRef("channel_id"),
        wamid=OuterRef("reply_to_wamid"),
        conversation_id=OuterRef("conversation_id"),
    ).exclude(wamid="")
    rows = Message.objects.filter(conversation=conversation).exclude(Exists(target_here), handled_as=REACTION)
    return with_reactions(with_last_send(rows)).order_by("created_at", "pk")


def _tag_needle(tag: str) -> str:
    # Matches the tag as one JSON string element, case-insensitively. PostgreSQL prints jsonb with
    # non-ASCII characters as they are; other backends store Django's ASCII-escaped JSON text.
    return json.dumps(tag, ensure_ascii=connection.vendor != "postgresql")


def contact_list(
    *, workspace: Workspace, q: str = "", tag: str = "", opted_out: bool | None = None
) -> QuerySet[Contact]:
    contacts = Contact.objects.filter(workspace=workspace)
    if q := q.strip():
        contacts = contacts.filter(
            Q(name__icontains=q)
            | Q(profile_name__icontains=q)
            | Q(wa_id__icontains=q.removeprefix("+"))
            | Q(bsuid__icontains=q)
        )
    if tag := tag.strip():
        contacts = contacts.filter(tags__icontains=_tag_needle(tag))
    if opted_out is not None:
        contacts = contacts.filter(opted_out=opted_out)
    return contacts.order_by("-created_at", "-pk")


def contact_get(*, workspace: Workspace, pk: int) -> Contact:
    return _found(Contact.objects.filter(workspace=workspace), pk)


def queue_list(
    *, workspace: Workspace, state: str = "", channel: int | None = None, conversation: int | None = None
) -> QuerySet[Message]:
    """Outbound messages that went through the send queue, newest first."""
    rows = Message.objects.filter(workspace=workspace, direction=Message.Direction.OUTBOUND).exclude(
        send_state=Message.SendState.NONE
    )
    if state:
        rows = rows.filter(send_state=state)
    if channel is not None:
        rows = rows.filter(channel_id=channel)
    if conversation is not None:
        rows = rows.filter(conversation_id=conversation)
    return with_last_send(rows).order_by("-created_at", "-pk")


def queue_item_get(*, workspace: Workspace, pk: int) -> Message:
    return _found(queue_list(workspace=workspace), pk)


def message_get(*, workspace: Workspace, pk: int) -> Message:
    return _found(Message.objects.filter(workspace=workspace).select_related("channel"), pk)


def message_media_id(*, message: Message) -> str:
    """Meta's media id of an inbound media message, "" when it has none."""
    if message.direction != Message.Direction.INBOUND:
        return ""
    item = (message.payload or {}).get(message.type)
    media_id = item.get("id") if isinstance(item, dict) else None
    return media_id if isinstance(media_id, str) else ""


def message_media(*, message: Message) -> MediaFile:
    """Download the media from WhatsApp now (Meta keeps it for a limited time; we do not store it).

    Raises NotFound when the message has no media, and the transport's SendError when WhatsApp fails.
    """
    media_id = message_media_id(message=message)
    if not media_id:
        raise NotFound("This message has no media.", code="no_media")
    return transport_for(message.channel).fetch_media(message.channel, media_id)


def inbound_backlog() -> tuple[int, datetime | None]:
    """Customer messages stored but not processed yet, every workspace together (an operator's
    figure, never shown to a tenant), and when the oldest of them arrived."""
    found = Message.objects.filter(direction=Message.Direction.INBOUND, processed_at__isnull=True).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    return int(found["count"]), found["oldest"]


def search_index_lag() -> tuple[float, int]:
    """Seconds since the oldest message the search indexer has not read was stored (0: none), and
    the ids of history left to index (0 once the backfill is done). An operator's figure."""
    cursor = SearchIndexCursor.objects.filter(id=1).first() or SearchIndexCursor()
    oldest = (
        Message.objects.filter(pk__gt=cursor.last_message_id)
        .order_by("pk")
        .values_list("created_at", flat=True)
        .first()
    )
    return (timezone.now() - oldest).total_seconds() if oldest else 0.0, cursor.backfill_below


# --- the staff inbox --------------------------------------------------------------------------------
class InboxView:
    """The inbox's filters by who has the conversation (the default shows every live one)."""

    LIVE = "live"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    WAITING = "waiting"  # for a person
    BOT = "bot"
    CLOSED = "closed"
    ALL = (LIVE, MINE, UNASSIGNED, WAITING, BOT, CLOSED)


_VIEW_STATUS = {
    InboxView.WAITING: Conversation.Status.PENDING_HUMAN,
    InboxView.BOT: Conversation.Status.OPEN,
    InboxView.CLOSED: Conversation.Status.CLOSED,
}
_VIEW_ASSIGNEE = {InboxView.MINE: ASSIGNEE_ME, InboxView.UNASSIGNED: ASSIGNEE_NONE}


def inbox_list(
    *,
    workspace: Workspace,
    user_id: int,
    view: str = InboxView.LIVE,
    channel: int | None = None,
    tag: str = "",
    q: str = "",
) -> QuerySet[Conversation]:
    """The inbox's rows, newest activity first, each with its last message (`last_body`, `last_type`,
    `last_author`) in the same query: one statement for the page, whatever its length. Search is
    conversation_list's."""
    conversations = conversation_list(
        workspace=workspace,
        user_id=user_id,
        status=_VIEW_STATUS.get(view, ""),
        assignee=_VIEW_ASSIGNEE.get(view, ""),
        channel=channel,
        q=q,
    )
    if view not in _VIEW_STATUS:
        conversations = conversations.exclude(status=Conversation.Status.CLOSED)
    if tag := tag.strip():
        conversations = conversations.filter(contact__tags__icontains=_tag_needle(tag))
    # Newest first through the (conversation, id) index; a reaction is not what the customer "said".
    last = Message.objects.filter(conversation_id=OuterRef("pk")).exclude(handled_as=REACTION).order_by("-id")
    return conversations.select_related("channel").annotate(
        last_body=Subquery(last.values("body")[:1]),
        last_type=Subquery(last.values("type")[:1]),
        last_author=Subquery(last.values("author")[:1]),
    )


def waiting_count(*, workspace: Workspace) -> int:
    """Conversations waiting for a person (the navigation's counter)."""
    return Conversation.objects.filter(workspace=workspace, status=Conversation.Status.PENDING_HUMAN).count()


def contact_history(*, conversation: Conversation, limit: int = 10) -> list[Conversation]:
    """The customer's other conversations (any number of the workspace), newest first."""
    return list(
        Conversation.objects.filter(
            workspace_id=conversation.workspace_id, contact_id=conversation.contact_id
        )
        .exclude(pk=conversation.pk)
        .select_related("channel")
        .annotate(message_count=Count("messages"))
        .order_by("-created_at", "-pk")[:limit]
    )


def conversation_notes(*, conversation: Conversation) -> QuerySet[InternalNote]:
    return (
        InternalNote.objects.filter(conversation=conversation).select_related("author").order_by("created_at")
    )


def canned_reply_list(*, workspace: Workspace, q: str = "") -> QuerySet[CannedReply]:
    replies = CannedReply.objects.filter(workspace=workspace)
    if q := q.strip():
        replies = replies.filter(Q(title__icontains=q) | Q(body__icontains=q))
    return replies.order_by("title", "pk")


def canned_reply_get(*, workspace: Workspace, pk: int) -> CannedReply:
    return _found(CannedReply.objects.filter(workspace=workspace), pk)
