"""Reads for channels."""

from __future__ import annotations

from collections.abc import Collection

from apps.whatsapp.models import Channel


def channels_addressed(
    *, phone_number_ids: Collection[str], account_ids: Collection[str] = ()
) -> list[Channel]:
    """The channels a webhook delivery may come from, in one query: those of its phone numbers, or, when it
    names none (account-wide changes), those of its business accounts, whose app secret signs it.

    Inactive channels are included so their app secret still authenticates a delivery; the caller treats
    them as unknown.
    """
    if phone_ids := [pnid for pnid in phone_number_ids if pnid]:
        return list(Channel.objects.filter(phone_number_id__in=phone_ids))
    if waba_ids := [waba_id for waba_id in account_ids if waba_id]:
        return list(Channel.objects.filter(waba_id__in=waba_ids))
    return []


def channel_verify_tokens() -> list[str]:
    """The verify tokens of the active channels that have one (decrypted)."""
    tokens = (
        Channel.objects.filter(is_active=True).exclude(verify_token="").values_list("verify_token", flat=True)
    )
    return [token for token in tokens if token]
