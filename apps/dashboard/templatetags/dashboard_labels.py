"""Translated labels for the domain's choice values (the models' own labels are English only)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

register = template.Library()

CONVERSATION_STATUS: dict[str, Promise] = {
    "open": _("Bot answers"),
    "pending_human": _("Waiting for a person"),
    "human": _("A person answers"),
    "closed": _("Closed"),
}
SEND_STATE: dict[str, Promise] = {
    "pending": _("Pending"),
    "processing": _("Processing"),
    "sent": _("Sent"),
    "failed": _("Failed"),
    "retry": _("Retry"),
    "cancelled": _("Cancelled"),
}
AUTHOR: dict[str, Promise] = {
    "customer": _("Customer"),
    "bot": _("Bot"),
    "agent": _("Agent"),
    "system": _("System"),
    "campaign": _("Campaign"),
}
KNOWLEDGE_KIND: dict[str, Promise] = {"faq": _("FAQ"), "document": _("Document")}
CIRCUIT: dict[str, Promise] = {"closed": _("closed"), "half_open": _("half-open"), "open": _("open")}
ROLE: dict[str, Promise] = {
    "owner": _("Owner"),
    "admin": _("Admin"),
    "supervisor": _("Supervisor"),
    "agent": _("Agent"),
    "viewer": _("Viewer"),
}
ALERT_STATE: dict[str, Promise] = {
    "open": _("Open"),
    "acknowledged": _("Acknowledged"),
    "resolved": _("Resolved"),
}
SEVERITY: dict[str, Promise] = {"low": _("Low"), "medium": _("Medium"), "high": _("High")}
ALERT_KIND: dict[str, Promise] = {
    "keyword": _("Keyword"),
    "regex": _("Pattern"),
    "no_answer": _("No answer"),
    "asked_for_person": _("Asked for a person"),
    "providers_failed": _("AI providers failed"),
    "delivery_failures": _("Delivery failures"),
    "sentiment": _("Negative sentiment"),
    "campaign_stopped": _("WhatsApp stopped a campaign"),
}


@register.filter
def alert_state_label(value: str) -> str:
    return str(ALERT_STATE.get(value, value))


@register.filter
def severity_label(value: str) -> str:
    return str(SEVERITY.get(value, value))


@register.filter
def alert_kind_label(value: str) -> str:
    return str(ALERT_KIND.get(value, value))


@register.filter
def status_label(value: str) -> str:
    return str(CONVERSATION_STATUS.get(value, value))


@register.filter
def send_state_label(value: str) -> str:
    return str(SEND_STATE.get(value, value))


@register.filter
def author_label(value: str) -> str:
    return str(AUTHOR.get(value, value))


@register.filter
def kind_label(value: str) -> str:
    return str(KNOWLEDGE_KIND.get(value, value))


@register.filter
def role_label(value: str) -> str:
    return str(ROLE.get(value, value))


@register.filter
def circuit_label(value: str) -> str:
    return str(CIRCUIT.get(value, value))


@register.filter
def when(value: datetime | None) -> str:
    """A list's time: the hour for today, else the date, in the active time zone and the locale's format."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return date_format(local, "TIME_FORMAT")
    return date_format(local, "SHORT_DATE_FORMAT")


@register.filter
def stamp(value: datetime | None) -> str:
    """A message's time: the hour for today, else the date and the hour (active zone, locale format)."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return date_format(local, "TIME_FORMAT")
    return date_format(local, "SHORT_DATETIME_FORMAT")


# Why a provider's call failed (`ProviderError.outcome`), said for the person who set it up.
PROVIDER_OUTCOME: dict[str, Promise] = {
    "timeout": _("No answer within the time limit."),
    "auth_error": _("The provider refused the API key."),
    "rate_limited": _("The provider asks us to slow down (too many requests)."),
    "bad_request": _("The provider refused the request: check the model's name."),
    "connection_error": _("The provider could not be reached: check the base URL."),
    "malformed": _("The provider's answer was empty or not understood."),
    "server_error": _("The provider had an internal error; try again later."),
    "url_not_allowed": _(
        "This address may not be called (the operator can allow it in EGRESS_ALLOWED_NETWORKS)."
    ),
    "error": _("The call failed."),
}
# Meta's quality rating of a number.
QUALITY: dict[str, Promise] = {
    "GREEN": _("High"),
    "YELLOW": _("Medium"),
    "RED": _("Low"),
    "UNKNOWN": _("Unknown"),
}


@register.filter
def provider_outcome_label(value: str) -> str:
    return str(PROVIDER_OUTCOME.get(value, PROVIDER_OUTCOME["error"]))


@register.filter
def quality_label(value: str) -> str:
    return str(QUALITY.get(value.upper(), value)) if value else str(QUALITY["UNKNOWN"])


@register.filter
def list_position(values: list[str], value: str) -> int | str:
    """1-based position of `value` in `values` ("" when absent)."""
    return values.index(value) + 1 if value in values else ""


@register.filter
def media_unavailable(message: object) -> str:
    """Why a received message's file could not be kept ("" when it was, or there is none): WhatsApp Web
    media is downloaded on arrival and a failure is written in the message's payload."""
    payload = getattr(message, "payload", None)
    item = payload.get(str(getattr(message, "type", ""))) if isinstance(payload, dict) else None
    reason = item.get("unavailable") if isinstance(item, dict) else None
    return reason if isinstance(reason, str) else ""
