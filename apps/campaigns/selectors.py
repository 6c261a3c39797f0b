"""Reads of the campaigns app; every one takes the workspace."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Count, Exists, Model, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from apps.campaigns.models import Campaign, ContactImport, Recipient, Segment, Template
from apps.conversations.models import ConsentRecord, Contact, Conversation, Message
from chatbot.exceptions import NotFound

M = TypeVar("M", bound=Model)


def _one(queryset: QuerySet[M], pk: int) -> M:
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise NotFound("Not found.")
    return found


def template_list(*, workspace: Any, status: str = "", channel_id: int | None = None) -> QuerySet[Template]:
    found = Template.objects.filter(workspace=workspace).order_by("name", "language")
    if status:
        found = found.filter(status=status)
    if channel_id:
        found = found.filter(channel_id=channel_id)
    return found


def template_get(*, workspace: Any, pk: int) -> Template:
    """Raises NotFound alike for a missing id and another workspace's."""
    return _one(Template.objects.filter(workspace=workspace), pk)


def segment_list(*, workspace: Any) -> QuerySet[Segment]:
    return Segment.objects.filter(workspace=workspace).order_by("name")


def segment_get(*, workspace: Any, pk: int) -> Segment:
    return _one(segment_list(workspace=workspace), pk)


def contact_import_list(*, workspace: Any) -> QuerySet[ContactImport]:
    return ContactImport.objects.filter(workspace=workspace).defer("data").order_by("-pk")


def contact_import_get(*, workspace: Any, pk: int) -> ContactImport:
    return _one(contact_import_list(workspace=workspace), pk)


def consent_list(*, contact: Contact) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(contact=contact).order_by("-at", "-pk")


def _has_tag(tag: str) -> Q:
    if connection.vendor == "postgresql":
        return Q(tags__contains=[tag])
    # SQLite has no JSON containment; the stored JSON text has the tag as a quoted string (the embedded
    # default only: there it matches regardless of case, as tags are deduplicated).
    return Q(tags__icontains=json.dumps(tag))


def segment_contacts(*, workspace: Any, filters: dict[str, Any], now: Any = None) -> QuerySet[Contact]:
    """The workspace's contacts a segment's filters select (see services.audiences.SEGMENT_FILTERS):
    tags (any of / all of), languages, marketing opt-out, a conversation on given channels, the last
    customer message within or older than N days (never written counts as older), attribute values."""
    now = now or timezone.now()
    found = Contact.objects.filter(workspace=workspace)
    if tags_any := filters.get("tags_any"):
        any_of = Q()
        for tag in tags_any:
            any_of |= _has_tag(tag)
        found = found.filter(any_of)
    for tag in filters.get("tags_all") or []:
        found = found.filter(_has_tag(tag))
    if languages := filters.get("languages"):
        found = found.filter(language__in=languages)
    if filters.get("opted_out") is not None:
        found = found.filter(opted_out=bool(filters["opted_out"]))
    conversations = Conversation.objects.filter(contact=OuterRef("pk"))
    if channel_ids := filters.get("channel_ids"):
        conversations = conversations.filter(channel_id__in=channel_ids)
        found = found.filter(Exists(conversations))
    if (days := filters.get("last_inbound_within_days")) is not None:
        found = found.filter(Exists(conversations.filter(last_inbound_at__gte=now - timedelta(days=days))))
    if (days := filters.get("last_inbound_older_than_days")) is not None:
        found = found.exclude(Exists(conversations.filter(last_inbound_at__gte=now - timedelta(days=days))))
    for index, (key, value) in enumerate((filters.get("attributes") or {}).items()):
        # An explicit key transform: a name such as "contains", "in" or "isnull" is then a key, never
        # a lookup (attributes__contains=... would test the whole object).
        name = f"attribute_{index}"
        found = found.alias(**{name: KeyTransform(key, "attributes")}).filter(**{name: value})
    return found


def segment_count(*, workspace: Any, filters: dict[str, Any]) -> dict[str, int]:
    """How many contacts the filters select now, and how many of them may receive marketing."""
    found = segment_contacts(workspace=workspace, filters=filters)
    total = found.count()
    opted_out = found.filter(opted_out=True).count()
    return {"count": total, "marketing_eligible": total - opted_out}


def marketing_audience(*, workspace: Any, filters: dict[str, Any]) -> QuerySet[Contact]:
    """The contacts a marketing campaign to this segment may reach: never the opted-out ones."""
    return segment_contacts(workspace=workspace, filters=filters).filter(opted_out=False)


def campaign_list(*, workspace: Any, status: str = "") -> QuerySet[Campaign]:
    found = Campaign.objects.filter(workspace=workspace).order_by("-pk")
    return found.filter(status=status) if status else found


def campaign_get(*, workspace: Any, pk: int) -> Campaign:
    return _one(
        Campaign.objects.filter(workspace=workspace).select_related("template", "channel", "segment"), pk
    )


def _replied() -> Exists:
    """The customer wrote in the campaign message's conversation after it was queued."""
    return Exists(
        Message.objects.filter(
            conversation_id=OuterRef("message__conversation_id"),
            direction=Message.Direction.INBOUND,
            created_at__gt=OuterRef("queued_at"),
        )
    )


MS = Message.Status
REACHED = {
    "sent": [MS.ACCEPTED, MS.SENT, MS.DELIVERED, MS.READ],
    "delivered": [MS.DELIVERED, MS.READ],
    "read": [MS.READ],
}


def campaign_funnel(*, campaign: Campaign) -> dict[str, Any]:
    """Where every recipient is: waiting, skipped (by reason), in the queue, sent, delivered, read,
    replied, failed (by Meta's code), cancelled. Sent counts every message WhatsApp accepted and
    delivered every one delivered (a read message was delivered): each stage is a share of the one
    before. One aggregate over the campaign's recipients and their messages."""
    recipients = Recipient.objects.filter(campaign=campaign)
    queued = Q(state=Recipient.State.QUEUED)
    failed = queued & (Q(message__status=MS.FAILED) | Q(message__send_state=Message.SendState.FAILED))
    totals = recipients.aggregate(
        total=Count("pk"),
        waiting=Count("pk", filter=Q(state=Recipient.State.WAITING)),
        skipped=Count("pk", filter=Q(state=Recipient.State.SKIPPED)),
        cancelled=Count("pk", filter=Q(state=Recipient.State.CANCELLED)),
        queued=Count("pk", filter=queued),
        in_queue=Count("pk", filter=queued & Q(message__status=MS.QUEUED) & ~failed),
        failed=Count("pk", filter=failed),
        **{
            name: Count("pk", filter=queued & Q(message__status__in=values))
            for name, values in REACHED.items()
        },
        replied=Count("pk", filter=queued & Q(_replied())),
    )
    skipped = dict(
        recipients.filter(state=Recipient.State.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("pk"))
        .order_by("skip_reason")
    )
    failures = [
        {"error_code": code, "count": n}
        for code, n in recipients.filter(failed)
        .values_list("message__error_code")
        .annotate(n=Count("pk"))
        .order_by("-n", "message__error_code")
    ]
    return {**totals, "skipped_by_reason": skipped, "failed_by_code": failures}


RECIPIENT_STAGES = (
    "waiting",
    "skipped",
    "cancelled",
    "in_queue",
    "sent",
    "delivered",
    "read",
    "failed",
    "replied",
)


def recipient_list(*, campaign: Campaign, stage: str = "") -> QuerySet[Recipient]:
    """The campaign's recipients in order, with their contact and message, optionally those at one
    stage of the funnel (the names of campaign_funnel)."""
    found = (
        Recipient.objects.filter(campaign=campaign)
        .select_related("contact", "message")
        .annotate(replied=_replied())
        .order_by("pk")
    )
    queued = Q(state=Recipient.State.QUEUED)
    failed = queued & (Q(message__status=MS.FAILED) | Q(message__send_state=Message.SendState.FAILED))
    if stage in ("waiting", "skipped", "cancelled"):
        found = found.filter(state=stage)
    elif stage == "in_queue":
        found = found.filter(queued & Q(message__status=MS.QUEUED)).exclude(failed)
    elif stage in REACHED:
        found = found.filter(queued & Q(message__status__in=REACHED[stage]))
    elif stage == "failed":
        found = found.filter(failed)
    elif stage == "replied":
        found = found.filter(queued & Q(replied=True))
    return found


def conversation_campaign(*, conversation: Conversation) -> Campaign | None:
    """The campaign whose message this conversation last received (a reply to it is tagged with it)."""
    found = (
        Recipient.objects.filter(message__conversation_id=conversation.pk, state=Recipient.State.QUEUED)
        .select_related("campaign")
        .order_by("-queued_at")
        .first()
    )
    return found.campaign if found is not None else None
