"""What staff do to a conversation."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import window_open
from apps.conversations.services.outbound import message_enqueue
from apps.conversations.services.status import Move, conversation_move
from apps.live.services import live_publish
from chatbot.exceptions import Conflict

C = Conversation.Status


def _closed() -> Conflict:
    return Conflict("The conversation is closed.", code="conversation_closed")


@transaction.atomic
def conversation_takeover(*, conversation: Conversation, user: Any) -> Conversation:
    """A person takes the conversation: the bot stays silent until it is handed back (audited)."""
    if not conversation_move(
        conversation=conversation, move=Move.TAKEOVER, assignee=user, human_activity_at=timezone.now()
    ):
        raise _closed()  # the only status a take-over cannot start from
    audit_record(
        workspace_id=conversation.workspace_id,
        actor_id=user.pk if user is not None else None,
        action="conversation.takeover",
        target=conversation,
    )
    return conversation


def conversation_handback(*, conversation: Conversation, user: Any) -> Conversation:
    moved = conversation_move(conversation=conversation, move=Move.HANDBACK, assignee=None)
    if not moved and conversation.status == C.CLOSED:
        raise _closed()
    return conversation  # refused otherwise: the bot already has it


def conversation_close(*, conversation: Conversation, user: Any) -> Conversation:
    """Close a live conversation; closing a closed one changes nothing."""
    conversation_move(conversation=conversation, move=Move.CLOSE)
    return conversation


def conversation_reply(*, conversation: Conversation, user: Any, body: str) -> list[Message]:
    """An agent's reply goes through the queue; replying takes the conversation over if nobody had."""
    return conversation_staff_send(conversation=conversation, user=user, body=body)


@transaction.atomic
def conversation_staff_send(
    *,
    conversation: Conversation,
    user: Any,
    body: str = "",
    type: str = "text",
    content: dict[str, Any] | None = None,
) -> list[Message]:
    """Staff send something (a reply, a template, buttons or a list) through the queue, taking the
    conversation over if nobody had. Anything but a template needs the 24-hour window open."""
    # Locked and re-read: a close (or another agent's take-over) after the caller loaded it wins.
    current = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if current.status == C.CLOSED:
        raise _closed()
    if type != "template" and not window_open(conversation=current):
        # Only approved templates may reach a customer outside the 24-hour window; say so now
        # rather than queue a message that is bound to fail.
        raise Conflict(
            "The customer's 24-hour window is closed; only a template can be sent.", code="window_closed"
        )
    now = timezone.now()
    if current.status != C.HUMAN or current.assignee_id is None:
        conversation_move(
            conversation=current,
            move=Move.TAKEOVER,
            assignee_id=current.assignee_id or user.pk,
            human_activity_at=now,
        )
    else:
        Conversation.objects.filter(pk=current.pk).update(human_activity_at=now)
        current.human_activity_at = now
        live_publish(workspace_id=current.workspace_id, kind="conversation", conversation_id=current.pk)
    return message_enqueue(
        conversation=current,
        author=Message.Author.AGENT,
        author_user=user,
        body=body,
        type=type,
        content=content,
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
