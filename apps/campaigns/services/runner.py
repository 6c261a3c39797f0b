"""The campaign runner: from an audience to messages in the per-number sender's queue.

One chain of short `campaigns.campaign_step` tasks per running campaign (identified by the campaign's
`feed_token`: a pause, a resume or the watchdog starts a new chain and an old one stops at its next
step). Each step, under the campaign row's lock:

1. stops the campaign when Meta said stop: the template paused or disabled (webhook), or a 131048
   (spam rate limit) on one of its recent messages;
2. fans out one batch: the next audience contacts by id (keyset; `fanout_cursor` is the last one done)
   become Recipient rows, unique per (campaign, contact), in the transaction that moves the cursor, so
   a worker killed mid-fan-out leaves a batch written in full or not at all and nobody twice;
3. feeds the sender: waiting recipients become outbound messages, only as many as keep the number's
   queue about CAMPAIGNS_FEED_AHEAD seconds long at its send rate (a customer's reply queued meanwhile
   waits seconds behind a campaign, not the whole campaign; a pause has little to take back; no
   worker holds a list of every recipient) and as Meta's messaging limit allows (distinct customers
   per number in a rolling 24 h: the rest wait for the window, `waiting_reason`);
4. completes the campaign once everyone was fanned out and every message left the queue.

Delivery (sent, delivered, read, failed with Meta's code) is the message's, moved by the sender and
the status webhooks like any other message; selectors.campaign_funnel reads it from there.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Min, Q
from django.utils import timezone

from apps.alerts.models import CAMPAIGN_STOPPED
from apps.alerts.services import alert_system_raise
from apps.audit.services import audit_record
from apps.campaigns import selectors
from apps.campaigns.models import Campaign, Recipient, Template
from apps.campaigns.services.campaigns import Move, campaign_move
from apps.campaigns.services.inbox import (
    SENDABLE,
    header_variable_count,
    media_header,
    template_message_content,
    template_render,
    url_button_indexes,
)
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services.outbound import conversation_settings, sender_wake
from apps.live.services import live_publish
from apps.whatsapp.models import Channel
from chatbot.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

St = Campaign.Status
S = Message.SendState
R = Recipient.State
LIMIT_WINDOW = timedelta(hours=24)
SPAM_LIMIT_CODE = 131048
SPAM_LOOKBACK = timedelta(minutes=15)  # 131048s older than this were seen by an earlier step
STALLED_AFTER = timedelta(minutes=2)  # a running campaign not stepped for this long is restarted
LIMIT_RECHECK = 60.0  # seconds between looks while waiting for the messaging limit's window
TEMPLATE_GONE = (Template.Status.DISABLED, Template.Status.DELETED, Template.Status.PENDING_DELETION)
PARAMETER_MAX = 1024
VARIABLE_SOURCES = ("name", "wa_id", "language", "attribute", "text")
CAMPAIGN_FIELDS = (
    "name",
    "template",
    "channel",
    "segment",
    "audience_filters",
    "variables",
    "header_variables",
    "button_variables",
    "header_media_url",
)


# --- building a campaign ------------------------------------------------------------------------
VARIABLE_PLACES = {  # field: (what its items are, at most how many)
    "variables": ("Variable {{%d}}", 20),
    "header_variables": ("The header's {{%d}}", 1),
    "button_variables": ("Link button %d", 2),
}


def _check_variables(variables: Any, field: str = "variables") -> list[dict[str, str]]:
    """Where each value of the template comes from: the body's {{n}}, the text header's {{1}} or the
    end of each URL button's link. Raises ValidationFailed."""
    label, most = VARIABLE_PLACES[field]
    if not isinstance(variables, list) or len(variables) > most:
        raise ValidationFailed(f"{field} is a list of at most {most} items.", code="invalid_variables")
    cleaned = []
    for index, item in enumerate(variables, start=1):
        name = label % index
        source = item.get("source") if isinstance(item, dict) else None
        if source not in VARIABLE_SOURCES:
            raise ValidationFailed(
                f"{name}: source is one of {', '.join(VARIABLE_SOURCES)}.", code="invalid_variables"
            )
        key, default = str(item.get("key") or ""), str(item.get("default") or "")
        if source == "attribute" and not key:
            raise ValidationFailed(f"{name}: an attribute source names its key.", code="invalid_variables")
        if source == "text" and not default.strip():
            raise ValidationFailed(
                f"{name}: a text source gives its text as default.", code="invalid_variables"
            )
        cleaned.append({"source": source, "key": key, "default": default})
    return cleaned


def _same_workspace(campaign_fields: dict[str, Any], workspace_id: int) -> None:
    for name in ("template", "channel", "segment"):
        found = campaign_fields.get(name)
        if found is not None and found.workspace_id != workspace_id:
            raise ValidationFailed(f"No such {name} in this workspace.", details={name: ["Not found."]})


def campaign_create(*, workspace: Any, user: Any, **fields: Any) -> Campaign:
    fields = {name: value for name, value in fields.items() if name in CAMPAIGN_FIELDS}
    _same_workspace(fields, workspace.pk)
    for name in VARIABLE_PLACES:
        fields[name] = _check_variables(fields.get(name, []), name)
    with transaction.atomic():
        campaign = Campaign.objects.create(workspace=workspace, created_by=user, **fields)
        audit_record(workspace_id=workspace.pk, actor_id=user.pk, action="campaign.create", target=campaign)
    return campaign


def campaign_update(*, campaign: Campaign, user: Any, **fields: Any) -> Campaign:
    """Change a draft (a scheduled campaign goes back to draft first: `unschedule`)."""
    fields = {name: value for name, value in fields.items() if name in CAMPAIGN_FIELDS}
    _same_workspace(fields, campaign.workspace_id)
    for name in VARIABLE_PLACES:
        if name in fields:
            fields[name] = _check_variables(fields[name], name)
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=St.DRAFT).update(**fields)
        if not changed:
            raise Conflict("Only a draft campaign can be changed.", code="illegal_transition")
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=user.pk,
            action="campaign.update",
            target=campaign,
            details={"fields": sorted(fields)},
        )
    campaign.refresh_from_db()
    return campaign


def campaign_delete(*, campaign: Campaign, user: Any) -> None:
    with transaction.atomic():
        if not Campaign.objects.filter(pk=campaign.pk, status=St.DRAFT).exists():
            raise Conflict(
                "Only a draft campaign can be deleted; cancel it instead.", code="illegal_transition"
            )
        audit_record(
            workspace_id=campaign.workspace_id, actor_id=user.pk, action="campaign.delete", target=campaign
        )
        Campaign.objects.filter(pk=campaign.pk, status=St.DRAFT).delete()


def local_time(value: datetime, time_zone: str) -> datetime:
    """A time written without an offset, read in the workspace's time zone. Raises ValidationFailed
    for a wall-clock time the zone skips (the hour lost when clocks go forward)."""
    if timezone.is_aware(value):
        return value
    zone = ZoneInfo(time_zone or "UTC")
    aware = value.replace(tzinfo=zone)
    if aware.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != value:
        raise ValidationFailed(
            f"{value:%Y-%m-%d %H:%M} does not exist in {zone.key} (the clocks go forward then).",
            code="invalid_time",
        )
    return aware


def launch_problem(campaign: Campaign) -> str:
    template, channel = campaign.template, campaign.channel
    if template is None:
        return "Choose an approved template."
    if template.status not in SENDABLE:
        return f"The template is {template.status.lower()}, not approved."
    if channel is None or not channel.is_active:
        return "Choose an active WhatsApp number."
    if channel.waba_id and template.waba_id != channel.waba_id:
        return "The template belongs to another WhatsApp Business Account than the number."
    if (media := media_header(template)) and not campaign.header_media_url.startswith("https://"):
        return f"The template's header is a {media.lower()}: give the campaign its public https:// link."
    if len(campaign.header_variables) != (wanted := header_variable_count(template)):
        return f"The template's header takes {wanted} variables; the campaign gives {len(campaign.header_variables)}."
    if len(campaign.button_variables) != (wanted := len(url_button_indexes(template))):
        return (
            f"The template has {wanted} links ending in a variable; the campaign gives "
            f"{len(campaign.button_variables)}."
        )
    if len(campaign.variables) != template.variable_count:
        return (
            f"The template takes {template.variable_count} variables; the campaign gives "
            f"{len(campaign.variables)}."
        )
    return ""


def campaign_schedule(*, campaign: Campaign, user: Any, scheduled_at: datetime | None = None) -> Campaign:
    """Freeze the audience's filters and schedule the campaign (now when no time is given); one
    whose time has come starts at once. Raises Conflict when it cannot be sent as it is."""
    campaign = Campaign.objects.select_related("template", "channel", "segment").get(pk=campaign.pk)
    problem = launch_problem(campaign)
    if problem:
        raise Conflict(problem, code="campaign_not_ready")
    now = timezone.now()
    at = scheduled_at or now
    filters = campaign.segment.filters if campaign.segment is not None else campaign.audience_filters
    with transaction.atomic():
        if not campaign_move(
            campaign=campaign, move=Move.SCHEDULE, scheduled_at=at, audience_filters=filters
        ):
            raise Conflict(f"A {campaign.status} campaign cannot be scheduled.", code="illegal_transition")
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=getattr(user, "pk", None),  # None: beat, for a run of a recurring campaign
            action="campaign.schedule",
            target=campaign,
            details={"scheduled_at": at.isoformat()},
        )
    if at <= now:
        campaign_start(campaign=campaign)
    return campaign


def campaign_unschedule(*, campaign: Campaign, user: Any) -> Campaign:
    with transaction.atomic():
        if not campaign_move(campaign=campaign, move=Move.UNSCHEDULE):
            raise Conflict(f"A {campaign.status} campaign is not scheduled.", code="illegal_transition")
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=user.pk,
            action="campaign.unschedule",
            target=campaign,
        )
    return campaign


def _chain_start(campaign: Campaign) -> None:
    """A new step chain; the old one (if any) stops at its next step."""
    from apps.campaigns.tasks import campaign_step

    token = uuid.uuid4().hex
    Campaign.objects.filter(pk=campaign.pk).update(feed_token=token, fed_at=timezone.now())
    campaign.feed_token = token
    campaign_id = campaign.pk
    transaction.on_commit(lambda: campaign_step.delay(campaign_id, token), robust=True)


def campaign_start(*, campaign: Campaign, now: datetime | None = None) -> bool:
    """The scheduler: a scheduled campaign whose time has come starts running."""
    with transaction.atomic():
        # A series (recurrence) never starts: beat starts copies of it (services/recurrence.py).
        due = Q(scheduled_at__lte=now or timezone.now(), recurrence="")
        if not campaign_move(campaign=campaign, move=Move.START, where=due):
            return False
        _chain_start(campaign)
    _publish(campaign)
    return True


def _take_back(campaign: Campaign, *, to: str) -> int:
    """Messages of the campaign not yet claimed by the sender go back: cancelled in the queue, and
    their recipients `to` (waiting, to be fed again on resume; or cancelled). Locked first, so the
    sender's claim of such a row waits and then finds it cancelled."""
    queued = Recipient.objects.filter(campaign=campaign, state=R.QUEUED).values("message_id")
    ids = list(
        Message.objects.select_for_update()
        .filter(pk__in=queued, send_state__in=[S.PENDING, S.RETRY])
        .values_list("pk", flat=True)
    )
    if ids:
        Message.objects.filter(pk__in=ids, send_state__in=[S.PENDING, S.RETRY]).update(
            send_state=S.CANCELLED, next_attempt_at=None
        )
        changes: dict[str, Any] = {"state": to}
        if to == R.WAITING:
            changes.update(message=None, queued_at=None)
        Recipient.objects.filter(campaign=campaign, message_id__in=ids).update(**changes)
    return len(ids)


def campaign_pause(*, campaign: Campaign, user: Any) -> Campaign:
    with transaction.atomic():
        if not campaign_move(campaign=campaign, move=Move.PAUSE, feed_token=""):
            raise Conflict(f"A {campaign.status} campaign is not running.", code="illegal_transition")
        taken = _take_back(campaign, to=R.WAITING)
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=user.pk,
            action="campaign.pause",
            target=campaign,
            details={"taken_back": taken},
        )
    _publish(campaign)
    return campaign


def campaign_resume(*, campaign: Campaign, user: Any) -> Campaign:
    campaign = Campaign.objects.select_related("template", "channel").get(pk=campaign.pk)
    if campaign.status == St.PAUSED and (problem := launch_problem(campaign)):
        raise Conflict(problem, code="campaign_not_ready")
    with transaction.atomic():
        if not campaign_move(campaign=campaign, move=Move.RESUME, waiting_reason="", waiting_until=None):
            raise Conflict(f"A {campaign.status} campaign is not paused.", code="illegal_transition")
        _chain_start(campaign)
        audit_record(
            workspace_id=campaign.workspace_id, actor_id=user.pk, action="campaign.resume", target=campaign
        )
    _publish(campaign)
    return campaign


def campaign_cancel(*, campaign: Campaign, user: Any) -> Campaign:
    """Nobody else is sent to: waiting recipients and messages still in the queue are cancelled;
    messages already handed to WhatsApp go on."""
    with transaction.atomic():
        if not campaign_move(campaign=campaign, move=Move.CANCEL, feed_token=""):
            raise Conflict(f"A {campaign.status} campaign cannot be cancelled.", code="illegal_transition")
        taken = _take_back(campaign, to=R.CANCELLED)
        Recipient.objects.filter(campaign=campaign, state=R.WAITING).update(state=R.CANCELLED)
        audit_record(
            workspace_id=campaign.workspace_id,
            actor_id=user.pk,
            action="campaign.cancel",
            target=campaign,
            details={"taken_back": taken},
        )
    _publish(campaign)
    return campaign


def _publish(campaign: Campaign) -> None:
    live_publish(
        workspace_id=campaign.workspace_id,
        kind="campaign",
        payload={"campaign_id": campaign.pk, "status": campaign.status},
    )


# --- the chain ----------------------------------------------------------------------------------
def campaign_step(*, campaign_id: int, token: str) -> float | None:
    """One step of a running campaign's chain; seconds until the next, or None when the chain ends
    (the campaign is no longer running, or this chain was replaced)."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template", "channel")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None or campaign.status != St.RUNNING or campaign.feed_token != token:
            return None
        now = timezone.now()
        if _meta_said_stop(campaign, now):
            return None
        more_fan_out = campaign.fanned_out_at is None and _fan_out_batch(campaign, now)
        fed = _feed(campaign, now)
        if not more_fan_out and campaign.fanned_out_at is not None and _finished(campaign):
            campaign_move(campaign=campaign, move=Move.COMPLETE, feed_token="")
            logger.info("campaign %s completed", campaign.pk)
            transaction.on_commit(lambda: _publish(campaign))
            return None
        Campaign.objects.filter(pk=campaign.pk).update(
            fed_at=now, waiting_reason=campaign.waiting_reason, waiting_until=campaign.waiting_until
        )
    if fed:
        sender_wake(_channel_id(campaign))
        _publish(campaign)
    if more_fan_out:
        return 0.0
    if campaign.waiting_reason and campaign.waiting_until:
        return min(LIMIT_RECHECK, max((campaign.waiting_until - now).total_seconds(), 1.0))
    return float(settings.CAMPAIGNS_FEED_INTERVAL)


def _channel_id(campaign: Campaign) -> int:
    if campaign.channel_id is None:  # _meta_said_stop failed such a campaign before
        raise ValueError(f"campaign {campaign.pk} has no number")
    return campaign.channel_id


def _meta_said_stop(campaign: Campaign, now: datetime) -> bool:
    template, channel = campaign.template, campaign.channel
    failure = ""
    if template is None or channel is None or template.status in TEMPLATE_GONE or not channel.is_active:
        failure = _gone(campaign)
    elif (
        template.variable_count != len(campaign.variables)
        or header_variable_count(template) != len(campaign.header_variables)
        or len(url_button_indexes(template)) != len(campaign.button_variables)
    ):
        # A template synced again with another number of variables would fail every message (132000).
        failure = "The template's variables changed at Meta; build the campaign again."
    if failure or template is None:
        campaign_move(campaign=campaign, move=Move.FAIL, feed_token="", failure=failure)
        _tell_staff(campaign, f"Campaign “{campaign.name}” failed: {failure}")
        _take_back(campaign, to=R.CANCELLED)
        Recipient.objects.filter(campaign=campaign, state=R.WAITING).update(state=R.CANCELLED)
        logger.warning("campaign %s failed: %s", campaign.pk, campaign.failure)
        transaction.on_commit(lambda: _publish(campaign))
        return True
    reason = ""
    if template.status not in SENDABLE:
        reason = "template_paused"
    elif Recipient.objects.filter(
        channel_id=_channel_id(campaign),
        campaign=campaign,
        queued_at__gte=now - SPAM_LOOKBACK,
        message__error_code=SPAM_LIMIT_CODE,
    ).exists():
        reason = "spam_rate_limit"
    if not reason:
        return False
    campaign_move(campaign=campaign, move=Move.AUTO_PAUSE, paused_reason=reason, feed_token="")
    _tell_staff(campaign, f"Campaign “{campaign.name}” paused: {STOP_REASONS[reason]}")
    _take_back(campaign, to=R.WAITING)
    audit_record(
        workspace_id=campaign.workspace_id,
        actor_id=None,
        action="campaign.auto_pause",
        target=campaign,
        details={"reason": reason},
    )
    logger.warning("campaign %s paused: %s", campaign.pk, reason)
    transaction.on_commit(lambda: _publish(campaign))
    return True


STOP_REASONS = {
    "spam_rate_limit": "WhatsApp's spam rate limit (131048); resume when the number's quality allows.",
    "template_paused": "Meta paused the template for its quality; resume once it is active again.",
}


def _tell_staff(campaign: Campaign, summary: str) -> None:
    """An alert in the workspace's alerts inbox (badge, live), as for a rule's."""
    alert_system_raise(
        workspace_id=campaign.workspace_id,
        kind=CAMPAIGN_STOPPED,
        summary=summary,
        channel_id=campaign.channel_id,
    )


def _gone(campaign: Campaign) -> str:
    if campaign.template is None or campaign.template.status in TEMPLATE_GONE:
        return "The template was deleted or disabled by Meta."
    return "The WhatsApp number was removed or deactivated."


def _value(contact: dict[str, Any], variable: dict[str, str]) -> str:
    source = variable["source"]
    if source == "name":
        raw: Any = contact["name"] or contact["profile_name"]
    elif source == "wa_id":
        raw = contact["wa_id"]
    elif source == "language":
        raw = contact["language"]
    elif source == "attribute":
        attributes = contact["attributes"] if isinstance(contact["attributes"], dict) else {}
        raw = attributes.get(variable["key"])
    else:
        raw = ""
    # Meta refuses new lines, tabs and long runs of spaces in a parameter (132018): one line of text.
    text = " ".join(str(raw).split()) if raw is not None else ""
    return (text or " ".join(variable["default"].split()))[:PARAMETER_MAX]


def recipient_parameters(
    contact: dict[str, Any], variables: list[dict[str, str]], *, link: bool = False
) -> list[str] | None:
    """The values for one contact (a dict of Contact's fields), or None when one is missing. A `link`
    value ends a URL button's link: percent-encoded ("Ana María" -> "Ana%20Mar%C3%ADa")."""
    values = [_value(contact, variable) for variable in variables]
    if link:
        values = [quote(value, safe="")[:PARAMETER_MAX] for value in values]
    return None if any(not value for value in values) else values


CONTACT_FIELDS = ("pk", "wa_id", "bsuid", "name", "profile_name", "language", "attributes", "opted_out")


def _recipient_for(
    campaign: Campaign, contact: dict[str, Any], marketing: bool, channel_id: int
) -> Recipient:
    recipient = Recipient(campaign=campaign, contact_id=contact["pk"], channel_id=channel_id)
    parameters = recipient_parameters(contact, campaign.variables)
    header = recipient_parameters(contact, campaign.header_variables)
    buttons = recipient_parameters(contact, campaign.button_variables, link=True)
    if not (contact["wa_id"] or contact["bsuid"]):
        recipient.state, recipient.skip_reason = R.SKIPPED, Recipient.Skip.NO_PHONE
    elif marketing and contact["opted_out"]:
        recipient.state, recipient.skip_reason = R.SKIPPED, Recipient.Skip.OPTED_OUT
    elif parameters is None or header is None or buttons is None:
        recipient.state, recipient.skip_reason = R.SKIPPED, Recipient.Skip.MISSING_VARIABLE
    else:
        recipient.parameters, recipient.header_parameters = parameters, header
        recipient.button_parameters = buttons
    return recipient


def _fan_out_batch(campaign: Campaign, now: datetime) -> bool:
    """Write the next batch of recipients; True while more contacts remain."""
    batch = int(settings.CAMPAIGNS_FANOUT_BATCH)
    contacts = list(
        selectors.segment_contacts(
            workspace=campaign.workspace_id, filters=campaign.audience_filters, now=now
        )
        .filter(pk__gt=campaign.fanout_cursor)
        .order_by("pk")
        .values(*CONTACT_FIELDS)[:batch]
    )
    marketing = campaign.template is not None and campaign.template.category == Template.Category.MARKETING
    # Unique per (campaign, contact): a batch written before a crash, run again, adds nobody.
    Recipient.objects.bulk_create(
        [_recipient_for(campaign, contact, marketing, _channel_id(campaign)) for contact in contacts],
        ignore_conflicts=True,
    )
    more = len(contacts) == batch
    campaign.fanout_cursor = contacts[-1]["pk"] if contacts else campaign.fanout_cursor
    if not more:
        campaign.fanned_out_at = now
    Campaign.objects.filter(pk=campaign.pk).update(
        fanout_cursor=campaign.fanout_cursor, fanned_out_at=campaign.fanned_out_at
    )
    return more


def _limit_numbers(campaign: Campaign) -> list[int]:
    """The numbers sharing the campaign's number's messaging limit. Since October 2025 Meta counts it
    per business portfolio: every number of the business account (the portfolio we can see) in the
    workspace shares one count; a number without an account id counts alone."""
    channel = campaign.channel
    assert channel is not None  # noqa: S101 - _meta_said_stop checked it
    if not channel.waba_id:
        return [channel.pk]
    return list(
        Channel.objects.filter(workspace_id=campaign.workspace_id, waba_id=channel.waba_id).values_list(
            "pk", flat=True
        )
    )


def _limit_room(campaign: Campaign, now: datetime) -> int | None:
    """How many more customers the number may start now under Meta's messaging limit (None: no
    limit); sets the campaign's waiting reason and time when none."""
    limit = campaign.channel.messaging_limit if campaign.channel else None
    if limit is None:
        return None
    since = now - LIMIT_WINDOW
    numbers = _limit_numbers(campaign)
    started = Recipient.objects.filter(channel_id__in=numbers, queued_at__gt=since)
    # Templates sent from the inbox start customers too (outside the 24-hour window; counted all,
    # which errs on the side of waiting). Read through the queue's index (workspace, newest first).
    templated = Message.objects.filter(
        workspace_id=campaign.workspace_id,
        channel_id__in=numbers,
        direction=Message.Direction.OUTBOUND,
        type="template",
        created_at__gt=since,
        contact_id__isnull=False,
    ).exclude(send_state="")
    used = started.values("contact_id").union(templated.values("contact_id")).count()
    room = max(limit - used, 0)
    if room == 0:
        firsts = [
            started.aggregate(first=Min("queued_at"))["first"],
            templated.aggregate(first=Min("created_at"))["first"],
        ]
        oldest = min((first for first in firsts if first is not None), default=now)
        campaign.waiting_reason = "messaging_limit"
        campaign.waiting_until = oldest + LIMIT_WINDOW
    return room


def _feed(campaign: Campaign, now: datetime) -> int:
    """Hand the next waiting recipients to the sender as messages; how many."""
    campaign.waiting_reason, campaign.waiting_until = "", None
    channel = campaign.channel
    template = campaign.template
    assert channel is not None and template is not None  # noqa: S101 - _meta_said_stop checked both
    backlog = Message.objects.filter(
        channel_id=channel.pk, direction=Message.Direction.OUTBOUND, send_state__in=[S.PENDING, S.RETRY]
    ).count()
    room = int(channel.send_rate * float(settings.CAMPAIGNS_FEED_AHEAD)) - backlog
    limit_room = _limit_room(campaign, now)
    if limit_room is not None:
        room = min(room, limit_room)
    if room <= 0:
        return 0
    recipients = list(
        Recipient.objects.filter(campaign=campaign, state=R.WAITING)
        .select_related("contact")
        .order_by("pk")[:room]
    )
    if not recipients:
        return 0
    marketing = template.category == Template.Category.MARKETING
    to_send: list[Recipient] = []
    for recipient in recipients:
        if marketing and recipient.contact.opted_out:  # opted out after the fan-out
            recipient.state, recipient.skip_reason = R.SKIPPED, Recipient.Skip.OPTED_OUT
        else:
            to_send.append(recipient)
    conversations = _conversations(campaign, [r.contact for r in to_send])
    max_attempts = conversation_settings(campaign.workspace_id).max_send_attempts
    messages = []
    for recipient in to_send:
        content = template_message_content(
            template=template,
            parameters=recipient.parameters,
            header_parameters=recipient.header_parameters,
            button_parameters=recipient.button_parameters,
            header_media_url=campaign.header_media_url,
        )
        messages.append(
            Message(
                workspace_id=campaign.workspace_id,
                channel_id=channel.pk,
                conversation=conversations[recipient.contact_id],
                contact_id=recipient.contact_id,
                direction=Message.Direction.OUTBOUND,
                author=Message.Author.CAMPAIGN,
                type="template",
                body=template_render(
                    template=template,
                    parameters=recipient.parameters,
                    header_parameters=recipient.header_parameters,
                ),
                payload=content,
                status=Message.Status.QUEUED,
                send_state=S.PENDING,
                max_attempts=max_attempts,
            )
        )
    Message.objects.bulk_create(messages)
    for recipient, message in zip(to_send, messages, strict=True):
        recipient.state, recipient.message, recipient.queued_at = R.QUEUED, message, now
    Recipient.objects.bulk_update(
        recipients, ["state", "skip_reason", "message", "queued_at"], batch_size=500
    )
    if limit_room is not None and len(messages) >= limit_room:
        _limit_room(campaign, now)  # the limit reached: say so now, not at the next step
    Conversation.objects.filter(pk__in=[c.pk for c in conversations.values()]).update(last_message_at=now)
    return len(messages)


def _conversations(campaign: Campaign, contacts: list[Contact]) -> dict[int, Conversation]:
    """Each contact's live conversation on the campaign's number, opened where there is none (a
    reply then lands in the inbox like any other)."""
    ids = [contact.pk for contact in contacts]
    channel_id = _channel_id(campaign)

    def live() -> dict[int, Conversation]:
        found = Conversation.objects.filter(channel_id=channel_id, contact_id__in=ids).exclude(
            status=Conversation.Status.CLOSED
        )
        return {conversation.contact_id: conversation for conversation in found}

    found = live()
    missing = [pk for pk in ids if pk not in found]
    if missing:
        # ignore_conflicts: a customer writing this very moment opens theirs first, and it is used.
        Conversation.objects.bulk_create(
            [
                Conversation(workspace_id=campaign.workspace_id, channel_id=channel_id, contact_id=pk)
                for pk in missing
            ],
            ignore_conflicts=True,
        )
        found = live()
    return found


def _finished(campaign: Campaign) -> bool:
    """Nobody waits and none of its messages is still in the sender's queue."""
    if Recipient.objects.filter(campaign=campaign, state=R.WAITING).exists():
        return False
    return not Recipient.objects.filter(
        campaign=campaign, state=R.QUEUED, message__send_state__in=[S.PENDING, S.RETRY, S.PROCESSING]
    ).exists()


def campaigns_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: start the scheduled campaigns whose time came; restart a running campaign's chain that
    stopped stepping (its worker died between two steps and the broker lost the next)."""
    now = now or timezone.now()
    started = 0
    for campaign in Campaign.objects.filter(
        status=St.SCHEDULED, scheduled_at__lte=now, recurrence=""
    ).order_by("scheduled_at"):
        started += campaign_start(campaign=campaign, now=now)
    restarted = 0
    stalled = Campaign.objects.filter(status=St.RUNNING, fed_at__lt=now - STALLED_AFTER)
    for campaign in stalled:
        with transaction.atomic():
            if Campaign.objects.filter(
                pk=campaign.pk, status=St.RUNNING, fed_at__lt=now - STALLED_AFTER
            ).exists():
                logger.warning("campaign %s: its chain stalled; restarting it", campaign.pk)
                _chain_start(campaign)
                restarted += 1
    return {"started": started, "restarted": restarted}


def campaign_preview(*, campaign: Campaign, limit: int = 5) -> list[dict[str, Any]]:
    """What the first audience contacts would read, from their real fields (nothing is written)."""
    template = campaign.template
    filters = campaign.segment.filters if campaign.segment is not None else campaign.audience_filters
    contacts = (
        selectors.segment_contacts(workspace=campaign.workspace_id, filters=filters)
        .order_by("pk")
        .values(*CONTACT_FIELDS)[:limit]
    )
    marketing = template is not None and template.category == Template.Category.MARKETING
    preview = []
    for contact in contacts:
        recipient = _recipient_for(campaign, contact, marketing, channel_id=0)  # never saved
        parameters = None if recipient.skip_reason else recipient.parameters
        text = ""
        if template is not None and parameters is not None and len(parameters) == template.variable_count:
            text = template_render(
                template=template, parameters=parameters, header_parameters=recipient.header_parameters
            )
        preview.append(
            {
                "contact": contact["pk"],
                "contact_name": contact["name"] or contact["profile_name"] or contact["wa_id"],
                "parameters": parameters,
                "text": text,
                "skip_reason": recipient.skip_reason,
            }
        )
    return preview
