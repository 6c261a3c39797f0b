from __future__ import annotations

from datetime import datetime

import factory
from django.utils import timezone

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Contact, Conversation, Message
from apps.whatsapp.tests.factories import ChannelFactory


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    workspace = factory.SubFactory(WorkspaceFactory)
    wa_id = factory.Sequence(lambda n: f"3460{n:07d}")
    name = ""


class ConversationFactory(factory.django.DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    channel = factory.SubFactory(ChannelFactory)
    workspace = factory.SelfAttribute("channel.workspace")
    contact = factory.SubFactory(ContactFactory, workspace=factory.SelfAttribute("..workspace"))
    last_inbound_at = factory.LazyFunction(timezone.now)
    last_message_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    """An inbound text by default; pass direction/author/send_state for an outbound one."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    workspace = factory.SelfAttribute("conversation.workspace")
    channel = factory.SelfAttribute("conversation.channel")
    contact = factory.SelfAttribute("conversation.contact")
    direction = Message.Direction.INBOUND
    author = Message.Author.CUSTOMER
    type = "text"
    body = "Hola"
    wamid = factory.Sequence(lambda n: f"wamid.test.{n}")
    status = Message.Status.RECEIVED


def outbound_message(**fields: object) -> Message:
    """A row of the send queue, pending unless told otherwise."""
    values: dict[str, object] = {
        "direction": Message.Direction.OUTBOUND,
        "author": Message.Author.BOT,
        "status": Message.Status.QUEUED,
        "send_state": Message.SendState.PENDING,
        "wamid": "",
        **fields,
    }
    return MessageFactory.create(**values)


def reaction_message(
    *, conversation: Conversation, to: str, emoji: str, at: datetime | None = None
) -> Message:
    """A customer's reaction as inbound processing leaves it: `emoji` ("" removes it) on the message
    whose wamid is `to`, made at `at` (Meta's timestamp; now by default)."""
    moment = at or timezone.now()
    return MessageFactory.create(
        conversation=conversation,
        type="reaction",
        body=emoji,
        reply_to_wamid=to,
        handled_as="reaction",
        sent_by_customer_at=moment,
        processed_at=moment,
    )
