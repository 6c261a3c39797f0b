"""Marketing opt-out and opt-in of a contact."""

from __future__ import annotations

from django.utils import timezone

from apps.conversations.models import Contact


def contact_set_opt_out(*, contact: Contact, opted_out: bool, source: str) -> int:
    """Set the contact's marketing opt-out; 1 when it changed, 0 when it already was so."""
    changed = Contact.objects.filter(pk=contact.pk, opted_out=not opted_out).update(
        opted_out=opted_out, opted_out_at=timezone.now() if opted_out else None, opt_out_source=source
    )
    if changed:
        contact.opted_out = opted_out
        contact.opt_out_source = source
    return changed
