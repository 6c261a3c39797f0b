"""Reads for channels.

A workspace's channels are read through `channel_list` / `channel_get`, which take the workspace.
`channels_addressed` and `channel_verify_tokens` alone read across workspaces: the webhook calls them
before any tenant is known, to find which channel (and so which workspace) a delivery is for.
"""

from __future__ import annotations

from collections.abc import Collection

from django.db.models import QuerySet

from apps.accounts.models import Workspace
from apps.whatsapp.models import VERIFY_TOKEN_PURPOSE, Channel
from apps.whatsapp.route_cache import (
    ChannelRoute,
    route_cache_enabled,
    route_cache_generation,
    route_cache_get,
    route_cache_put,
)
from chatbot.crypto import lookup_digests
from chatbot.exceptions import NotFound


def channel_list(*, workspace: Workspace) -> QuerySet[Channel]:
    return Channel.objects.filter(workspace=workspace).order_by("pk")


def channel_get(*, workspace: Workspace, pk: int) -> Channel:
    """Raises NotFound alike for a missing id and another workspace's."""
    channel = channel_list(workspace=workspace).filter(pk=pk).first()
    if channel is None:
        raise NotFound("Not found.")
    return channel


def channels_addressed(
    *, phone_number_ids: Collection[str], account_ids: Collection[str] = ()
) -> list[ChannelRoute]:
    """The channels a webhook delivery may come from: those of its phone numbers (from memory when the
    route cache holds them, else in one query), or, when it names none (account-wide changes), those of
    its business accounts, whose app secret signs it.

    Inactive channels are included so their app secret still authenticates a delivery; the caller treats
    them as unknown.
    """
    if phone_ids := sorted({pnid for pnid in phone_number_ids if pnid}):
        generation = route_cache_generation() if route_cache_enabled() else None
        if generation is None:
            return _routes(Channel.objects.filter(phone_number_id__in=phone_ids))
        found, missing = route_cache_get(phone_ids, generation)
        if missing:
            loaded = {
                route.phone_number_id: route
                for route in _routes(Channel.objects.filter(phone_number_id__in=missing))
            }
            fresh = {number: loaded.get(number) for number in missing}
            route_cache_put(fresh, generation)
            found.update(fresh)
        return [route for route in found.values() if route is not None]
    if waba_ids := [waba_id for waba_id in account_ids if waba_id]:
        return _routes(Channel.objects.filter(waba_id__in=waba_ids))
    return []


def _routes(channels: QuerySet[Channel]) -> list[ChannelRoute]:
    # Only the columns a route needs: the other two secrets are not decrypted.
    fields = ("pk", "workspace_id", "phone_number_id", "is_active", "app_secret", "last_webhook_at")
    return [
        ChannelRoute(
            pk=channel.pk,
            workspace_id=channel.workspace_id,
            phone_number_id=channel.phone_number_id,
            is_active=channel.is_active,
            app_secret=channel.app_secret,
            last_webhook_at=channel.last_webhook_at,
        )
        for channel in channels.only(*fields)
    ]


def channel_verify_tokens(token: str) -> list[str]:
    """The verify tokens (decrypted) of the active channels whose token's digest is `token`'s, under
    any key of FERNET_KEYS: an indexed lookup, not a decryption of every channel's token."""
    digests = lookup_digests(token, purpose=VERIFY_TOKEN_PURPOSE)
    tokens = Channel.objects.filter(is_active=True, verify_token_digest__in=digests).values_list(
        "verify_token", flat=True
    )
    return [candidate for candidate in tokens if candidate]
