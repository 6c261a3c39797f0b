"""Reads for the sandbox: the workspace's sandbox channel, its customers and one customer's thread."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from apps.accounts.models import Workspace
from apps.conversations.models import Contact, Message
from apps.whatsapp.models import Channel

THREAD_LIMIT = 200


def sandbox_channel(*, workspace: Workspace) -> Channel | None:
    return (
        Channel.objects.filter(workspace=workspace, kind=Channel.Kind.SANDBOX, is_active=True)
        .exclude(phone_number_id="")
        .order_by("pk")
        .first()
    )


def sandbox_customers(*, channel: Channel) -> QuerySet[Contact]:
    """Customers who wrote to the sandbox number, most recent first."""
    return (
        Contact.objects.filter(workspace_id=channel.workspace_id, conversations__channel=channel)
        .exclude(wa_id="")
        .distinct()
        .order_by("-updated_at")
    )


def sandbox_thread(*, channel: Channel, wa_id: str) -> list[Message]:
    """The last messages between the sandbox number and `wa_id`, oldest first.

    An inbound row has no contact until the worker processes it, so it is matched by its sender too.
    """
    rows = (
        Message.objects.filter(channel=channel)
        .filter(Q(contact__wa_id=wa_id) | Q(contact__isnull=True, from_wa_id=wa_id))
        .order_by("-created_at", "-id")[:THREAD_LIMIT]
    )
    return list(reversed(rows))
