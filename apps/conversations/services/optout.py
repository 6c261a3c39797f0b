"""Marketing opt-out and opt-in of a contact, and the consent record of each change."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.conversations.models import ConsentRecord, Contact

# Opt-out sources written before consent records existed, as record sources.
_RECORD_SOURCE = {"import": ConsentRecord.Source.CSV, "meta_131050": ConsentRecord.Source.META_ERROR}


def contact_set_opt_out(*, contact: Contact, opted_out: bool, source: str) -> int:
    """Set the contact's marketing opt-out; 1 when it changed (and a ConsentRecord says so), 0 when it
    already was so."""
    now = timezone.now()
    with transaction.atomic():
        changed = Contact.objects.filter(pk=contact.pk, opted_out=not opted_out).update(
            opted_out=opted_out, opted_out_at=now if opted_out else None, opt_out_source=source
        )
        if changed:
            ConsentRecord.objects.create(
                workspace_id=contact.workspace_id,
                contact_id=contact.pk,
                kind=ConsentRecord.Kind.MARKETING,
                opted_in=not opted_out,
                source=_RECORD_SOURCE.get(source, source),
                at=now,
            )
    if changed:
        contact.opted_out = opted_out
        contact.opt_out_source = source
    return changed


def contacts_opt_out_many(*, workspace_id: int, contact_ids: list[int], source: str) -> int:
    """`contact_set_opt_out(opted_out=True)` for many contacts of a workspace in two statements (an
    import); those already opted out are left as they are. How many changed."""
    if not contact_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        changing = list(
            Contact.objects.select_for_update()
            .filter(workspace_id=workspace_id, pk__in=contact_ids, opted_out=False)
            .values_list("pk", flat=True)
        )
        Contact.objects.filter(pk__in=changing).update(
            opted_out=True, opted_out_at=now, opt_out_source=source
        )
        ConsentRecord.objects.bulk_create(
            ConsentRecord(
                workspace_id=workspace_id,
                contact_id=pk,
                kind=ConsentRecord.Kind.MARKETING,
                opted_in=False,
                source=_RECORD_SOURCE.get(source, source),
                at=now,
            )
            for pk in changing
        )
    return len(changing)
