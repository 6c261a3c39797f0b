"""What staff do to a conversation."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.conversations.models import Conversation, Message
from apps.conversations.services.outbound import message_enqueue, window_open
from apps.live.services import live_publish
from chatbot.exceptions import Conflict

C = Conversation.Status


def _live(conversation: Conversation) -> None:
    if conversation.status == C.CLOSED:
        raise Conflict("The conversation is closed.", code="conversation_closed")


def conversation_takeover(*, conversation: Conversation, user: Any) -> Conversation:
    """A person takes the conversation: the bot stays silent until it is handed back."""
    _live(conversation)
    conversation.status, conversation.assignee = C.HUMAN, user
    conversation.human_activity_at = timezone.now()
    conversation.save(update_fields=["status", "assignee", "human_activity_at"])
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    return conversation


def conversation_handback(*, conversation: Conversation, user: Any) -> Conversation:
    _live(conversation)
    conversation.status, conversation.assignee = C.OPEN, None
    conversation.save(update_fields=["status", "assignee"])
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    return conversation


def conversation_close(*, conversation: Conversation, user: Any) -> Conversation:
    if conversation.status != C.CLOSED:
        conversation.status, conversation.closed_at = C.CLOSED, timezone.now()
        conversation.save(update_fields=["status", "closed_at"])
        live_publish(
            workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk
        )
    return conversation


@transaction.atomic
def conversation_reply(*, conversation: Conversation, user: Any, body: str) -> list[Message]:
    """An agent's reply goes through the queue; replying takes the conversation over if nobody had."""
    _live(conversation)
    if not window_open(conversation, timezone.now()):
        # Only approved templates may reach a customer outside the 24-hour window; say so now
        # rather than queue a message that is bound to fail.
        raise Conflict(
            "The customer's 24-hour window is closed; only a template can be sent.", code="window_closed"
        )
    if conversation.status != C.HUMAN or conversation.assignee_id is None:
        conversation.status = C.HUMAN
        conversation.assignee = conversation.assignee or user
    conversation.human_activity_at = timezone.now()
    conversation.save(update_fields=["status", "assignee", "human_activity_at"])
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    return message_enqueue(
        conversation=conversation, author=Message.Author.AGENT, author_user=user, body=body
    )


def conversation_mark_read(*, conversation: Conversation) -> None:
    """Staff read the thread: unread count to zero, and a read receipt for the customer's last message."""
    from apps.conversations.tasks import message_mark_read

    Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    last = (
        Message.objects.filter(conversation=conversation, direction=Message.Direction.INBOUND)
        .exclude(wamid="")
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if last is not None:
        transaction.on_commit(lambda: message_mark_read.delay(last), robust=True)
