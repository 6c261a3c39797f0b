"""Labels of the Analytics page: durations, shares, and the names of its measures."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

register = template.Library()

MEASURE: dict[str, Promise] = {
    "bot_first_response": _("Bot's first response"),
    "people_first_response": _("People's first response"),
    "resolution": _("Resolution"),
}
STAGE: dict[str, Promise] = {
    "sent": _("Sent"),
    "delivered": _("Delivered"),
    "read": _("Read"),
    "failed": _("Failed"),
}
OPT_OUT_SOURCE: dict[str, Promise] = {
    "keyword": _("Keyword (STOP, BAJA, ...)"),
    "button": _("Template button"),
    "csv": _("CSV import"),
    "api": _("API"),
    "user_preferences": _("WhatsApp user preferences"),
    "staff": _("Staff"),
    "meta_error": _("WhatsApp error 131050"),
}


@register.filter
def duration(seconds: float | None) -> str:
    """7 s, 4.5 min, 2.1 h, 3.2 d; an em dash when there is nothing to measure."""
    if seconds is None:
        return "—"
    for size, unit in ((86400, _("d")), (3600, _("h")), (60, _("min"))):
        if seconds >= size:
            return f"{number_format(seconds / size, 1)} {unit}"
    return f"{number_format(seconds, 0)} {_('s')}"


@register.filter
def share(value: float | None) -> str:
    return "—" if value is None else f"{number_format(value * 100, 1)} %"


@register.filter
def measure_label(value: str) -> str:
    return str(MEASURE.get(value, value))


@register.filter
def stage_label(value: str) -> str:
    return str(STAGE.get(value, value))


@register.filter
def opt_out_source_label(value: str) -> str:
    return str(OPT_OUT_SOURCE.get(value, value))
