"""Audiences: the workspace's audience settings, consent recorded by staff or the API, saved segments."""

from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction

from apps.campaigns.models import AudienceSettings, Segment
from apps.conversations.models import ConsentRecord, Contact
from apps.conversations.services.optout import contact_set_opt_out
from chatbot.exceptions import Conflict, ValidationFailed

SEGMENT_FILTERS = frozenset(
    {
        "tags_any",
        "tags_all",
        "languages",
        "opted_out",
        "channel_ids",
        "last_inbound_within_days",
        "last_inbound_older_than_days",
        "attributes",
    }
)


def audience_settings(*, workspace_id: int) -> AudienceSettings:
    found, _ = AudienceSettings.objects.get_or_create(
        workspace_id=workspace_id, defaults={"default_region": settings.CAMPAIGNS_DEFAULT_REGION}
    )
    return found


# The ISO 3166 regions phonenumbers knows (ES, MX, US, ...): the API's RegionEnum.
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def region_check(region: str) -> str:
    """An ISO 3166 region phonenumbers knows (ES, MX, US, ...), upper-cased. Raises ValidationFailed."""
    region = region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationFailed(
            f"Unknown region {region!r}: use a two-letter code like ES or MX.", code="invalid"
        )
    return region


def audience_settings_update(*, workspace_id: int, default_region: str | None = None) -> AudienceSettings:
    """Change the settings given (None: left as they are)."""
    found = audience_settings(workspace_id=workspace_id)
    if default_region is not None:
        found.default_region = region_check(default_region)
        found.save(update_fields=["default_region"])
    return found


@transaction.atomic
def consent_record(*, contact: Contact, kind: str, opted_in: bool, source: str) -> Contact:
    """Record a consent given or withdrawn. Marketing goes through `contact_set_opt_out`, which keeps the
    contact's `opted_out` (what sends read) and the record together; utility is recorded as said."""
    if kind == ConsentRecord.Kind.MARKETING:
        if not contact_set_opt_out(contact=contact, opted_out=not opted_in, source=source):
            # Nothing changed, but a fresh confirmation (an opt-in renewed by the customer) is still evidence.
            ConsentRecord.objects.create(
                workspace_id=contact.workspace_id,
                contact=contact,
                kind=kind,
                opted_in=opted_in,
                source=source,
                at=_now(),
            )
    else:
        ConsentRecord.objects.create(
            workspace_id=contact.workspace_id,
            contact=contact,
            kind=kind,
            opted_in=opted_in,
            source=source,
            at=_now(),
        )
    contact.refresh_from_db()
    return contact


def _now() -> Any:
    from django.utils import timezone

    return timezone.now()


# --- segments -------------------------------------------------------------------------------------
def segment_filters_clean(filters: dict[str, Any]) -> dict[str, Any]:
    """Keep only known keys with a value (an empty list or None means "any"). Raises ValidationFailed."""
    unknown = sorted(set(filters) - SEGMENT_FILTERS)
    if unknown:
        raise ValidationFailed(f"Unknown segment filters: {unknown}.", code="invalid")
    return {key: value for key, value in filters.items() if value not in (None, [], {}, "")}


def segment_create(*, workspace: Any, name: str, filters: dict[str, Any], user: Any = None) -> Segment:
    try:
        return Segment.objects.create(
            workspace=workspace, name=name, filters=segment_filters_clean(filters), created_by=user
        )
    except IntegrityError as exc:
        raise Conflict("A segment with this name exists.", code="duplicate_segment") from exc


def segment_update(*, segment: Segment, data: dict[str, Any]) -> Segment:
    if "name" in data:
        segment.name = data["name"]
    if "filters" in data:
        segment.filters = segment_filters_clean(data["filters"])
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError as exc:
        raise Conflict("A segment with this name exists.", code="duplicate_segment") from exc
    return segment


def segment_delete(*, segment: Segment) -> None:
    segment.delete()
