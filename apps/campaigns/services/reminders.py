"""Booking reminders (24 h and 2 h before by default, per service): through the conversation's
outbound queue like any bot message; outside the 24-hour window as the service's approved template,
or skipped with the reason when there is none. A unique (booking, hours) row makes each go out once,
however often and wherever the beat task runs."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.calendar import chat, selectors
from apps.calendar.models import Booking, BookingReminder
from apps.campaigns.models import Template
from apps.campaigns.services.inbox import SENDABLE, template_message_content
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import window_open
from apps.conversations.services.outbound import message_enqueue
from chatbot.exceptions import ValidationFailed

logger = logging.getLogger(__name__)


def reminder_text(booking: Booking, *, language: str) -> str:
    when = chat.when_text(booking.start, zone=chat.zone_of(booking.workspace_id), language=language)
    with translation.override(language):
        return str(
            _("Reminder: %(service)s on %(when)s. Reply CHANGE to move it or CANCEL to cancel it.")
            % {"service": booking.service.name, "when": when}
        )


def _language(booking: Booking) -> str:
    language = booking.contact.language if booking.contact else ""
    return language if language in ("es", "en") else "es"


def _skip(row: BookingReminder, reason: str) -> str:
    BookingReminder.objects.filter(pk=row.pk).update(
        status=BookingReminder.Status.SKIPPED, reason=reason[:255]
    )
    logger.info("reminder %s of booking %s skipped: %s", row.hours_before, row.booking_id, reason)
    return "skipped"


def booking_remind(*, booking: Booking, hours_before: int, now: dt.datetime) -> str:
    """Queue one reminder: "sent", "skipped" (the row says why) or "already" (another run claimed it)."""
    with transaction.atomic():
        try:
            with transaction.atomic():  # the claim: the unique row
                row = BookingReminder.objects.create(
                    booking=booking, hours_before=hours_before, status=BookingReminder.Status.SENT
                )
        except IntegrityError:
            return "already"
        if booking.created_at > booking.start - dt.timedelta(hours=hours_before):
            return _skip(row, f"booked less than {hours_before} h before: the confirmation was enough")
        if booking.contact_id is None:
            return _skip(row, "the booking has no customer contact")
        conversation = (
            Conversation.objects.filter(workspace_id=booking.workspace_id, contact_id=booking.contact_id)
            .order_by("-last_inbound_at", "-pk")
            .first()
        )
        if conversation is None:
            return _skip(row, "no conversation with the customer")
        language = _language(booking)
        text = reminder_text(booking, language=language)
        fallback = None
        if booking.service.reminder_template:
            templates = Template.objects.filter(
                workspace_id=booking.workspace_id, name=booking.service.reminder_template, status__in=SENDABLE
            ).order_by("pk")
            template = templates.filter(language__startswith=language).first() or templates.first()
            if template is not None:
                when = chat.when_text(
                    booking.start, zone=chat.zone_of(booking.workspace_id), language=language
                )
                try:
                    fallback = template_message_content(
                        template=template, parameters=[booking.service.name, when]
                    )
                except ValidationFailed as exc:
                    return _skip(row, f"the reminder template does not fit: {exc.message}")
        if fallback is None and not window_open(conversation=conversation, now=now):
            return _skip(row, "outside the 24-hour window and no approved reminder template")
        [message, *_rest] = message_enqueue(
            conversation=conversation,
            author=Message.Author.BOT,
            body=text,
            dedupe_key=f"reminder:{booking.pk}:{hours_before}",
            template_fallback=fallback,
        )
        BookingReminder.objects.filter(pk=row.pk).update(message=message)
    return "sent"


def booking_reminders_send(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat's tick: every reminder due now, queued once; stale earlier ones recorded as skipped."""
    now = now or timezone.now()
    counts = {"sent": 0, "skipped": 0, "already": 0}
    for booking, hours_before, stale in selectors.reminders_due(now=now):
        for hours in stale:
            BookingReminder.objects.get_or_create(
                booking=booking,
                hours_before=hours,
                defaults={
                    "status": BookingReminder.Status.SKIPPED,
                    "reason": f"superseded by the {hours_before} h reminder",
                },
            )
        counts[booking_remind(booking=booking, hours_before=hours_before, now=now)] += 1
    return counts
