"""The database, not the broker, is the source of truth: re-enqueue work the broker lost."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.conversations.models import Message
from apps.conversations.services.outbound import S, stuck_processing_settle

GRACE = timedelta(seconds=60)  # leave fresh rows to the tasks already on their way


def sweep(*, processing_timeout: timedelta) -> dict[str, int]:
    from apps.conversations.tasks import inbound_message_process, message_send

    now = timezone.now()
    inbound_ids = list(
        Message.objects.filter(
            direction=Message.Direction.INBOUND, processed_at__isnull=True, created_at__lt=now - GRACE
        ).values_list("pk", flat=True)[:1000]
    )
    for message_id in inbound_ids:
        inbound_message_process.delay(message_id)
    due = Message.objects.filter(send_state__in=[S.PENDING, S.RETRY], created_at__lt=now - GRACE).exclude(
        next_attempt_at__gt=now
    )
    outbound_ids = list(due.values_list("pk", flat=True)[:5000])
    for message_id in outbound_ids:
        message_send.delay(message_id)
    settled = stuck_processing_settle(older_than=processing_timeout)
    return {"inbound": len(inbound_ids), "outbound": len(outbound_ids), "unknown_outcome": settled}
