"""The WhatsApp Cloud API webhook: Meta's verification handshake (GET) and its deliveries (POST).

A delivery is answered quickly: it is authenticated, parsed and stored in one transaction, and the
processing of each new message is enqueued after commit. Anything but a 200 makes Meta re-deliver.
"""

from __future__ import annotations

import hmac
import logging
import math
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from rest_framework.throttling import BaseThrottle

from apps.campaigns.services.templates import TEMPLATE_FIELDS, template_event_apply
from apps.whatsapp.payloads import (
    ChannelBatch,
    PayloadError,
    delivery_account_ids,
    delivery_load,
    delivery_parse,
    delivery_phone_number_ids,
)
from apps.whatsapp.route_cache import ChannelRoute
from apps.whatsapp.selectors import channel_verify_tokens, channels_addressed
from apps.whatsapp.services import QUALITY_FIELD, channel_quality_apply, webhook_delivery_store
from apps.whatsapp.signature import matching_secret
from apps.whatsapp.templates import template_changes
from chatbot import ratelimit

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# last_webhook_at is a heartbeat: writing it at most this often spares a query per delivery and keeps
# concurrent deliveries of a busy number from queueing on its row lock.
SEEN_PRECISION = timedelta(seconds=60)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _verify(request)
    return _receive(request)


def _verify(request: HttpRequest) -> HttpResponse:
    """Meta's subscription handshake: echo `hub.challenge` exactly when the verify token is ours.

    Limited per client IP (WHATSAPP_VERIFY_RATE), so the token cannot be guessed by asking fast.
    """
    limit, window = ratelimit.parse_rate(settings.WHATSAPP_VERIFY_RATE)
    ip = BaseThrottle().get_ident(request)  # type: ignore[arg-type]  # honours NUM_PROXIES
    decision = ratelimit.hit(f"webhook-verify:ip:{ip}", limit, window)
    if not decision.allowed:
        logger.warning("webhook verification throttled for %s", ip)
        response = _error(429, "throttled", "Too many verification attempts; try again later.")
        response["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
        return response
    token = request.GET.get("hub.verify_token", "")
    if request.GET.get("hub.mode") != "subscribe" or not _verify_token_known(token):
        logger.warning("webhook verification refused (mode %r)", request.GET.get("hub.mode"))
        return _error(403, "forbidden", "Wrong hub.mode or hub.verify_token.")
    return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain; charset=utf-8")


def _verify_token_known(token: str) -> bool:
    presented = token.encode()
    known = False
    for candidate in [*channel_verify_tokens(token), settings.WHATSAPP_VERIFY_TOKEN]:
        # Bytes, because compare_digest refuses non-ASCII str; no early exit, so the time taken does
        # not tell which token matched.
        if candidate and presented and hmac.compare_digest(candidate.encode(), presented):
            known = True
    return known


def _receive(request: HttpRequest) -> HttpResponse:
    limit = settings.WHATSAPP_WEBHOOK_MAX_BYTES
    if _declared_length(request) > limit:
        return _error(413, "too_large", f"The body is over {limit} bytes.")
    # Read with a cap rather than through request.body: a body sent without Content-Length (chunked)
    # is bounded only here.
    body = request.read(limit + 1)
    if len(body) > limit:
        return _error(413, "too_large", f"The body is over {limit} bytes.")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return _error(401, "signature_missing", f"{SIGNATURE_HEADER} is missing.")
    try:
        delivery = delivery_load(body)
    except PayloadError as exc:
        return _error(400, "invalid_payload", str(exc))

    phone_number_ids = delivery_phone_number_ids(delivery)
    channels = channels_addressed(
        phone_number_ids=phone_number_ids, account_ids=delivery_account_ids(delivery)
    )
    secret = matching_secret(body, signature, _secrets(channels))
    if secret is None:
        logger.warning(
            "webhook refused: no app secret matches its signature (numbers %s)", sorted(phone_number_ids)[:5]
        )
        return _error(403, "signature_invalid", f"{SIGNATURE_HEADER} does not match.")

    routed = _route(delivery_parse(delivery), channels, secret)
    try:
        webhook_delivery_store(routed=routed, seen_precision=SEEN_PRECISION)
        if changes := template_changes(delivery, TEMPLATE_FIELDS | {QUALITY_FIELD}):
            # Only the workspaces whose own app secret signed the delivery.
            signers = {
                c.workspace_id
                for c in channels
                if hmac.compare_digest(c.app_secret.encode(), secret.encode())
            }
            for waba_id, field, value in changes:
                if field == QUALITY_FIELD:
                    channel_quality_apply(workspace_ids=signers, waba_id=waba_id, value=value)
                else:
                    template_event_apply(workspace_ids=signers, waba_id=waba_id, field=field, value=value)
    except DatabaseError:
        logger.exception("webhook delivery not stored; Meta will deliver it again")
        return _error(503, "unavailable", "The delivery could not be stored; try again later.")
    return JsonResponse({"status": "ok"})


def _route(
    batches: dict[str, ChannelBatch], channels: list[ChannelRoute], secret: str
) -> list[tuple[ChannelRoute, ChannelBatch]]:
    """Each batch with its channel, kept only when that channel's own secret signed the delivery:
    the holder of one app's secret cannot write into another app's numbers."""
    by_number = {channel.phone_number_id: channel for channel in channels if channel.phone_number_id}
    routed = []
    for phone_number_id, batch in batches.items():
        channel = by_number.get(phone_number_id)
        if channel is None or not channel.is_active:
            logger.warning(
                "webhook for unknown phone_number_id %s skipped (%d messages, %d statuses, %d preferences)",
                phone_number_id,
                len(batch.messages),
                len(batch.statuses),
                len(batch.preferences),
            )
        elif not hmac.compare_digest(channel.app_secret.encode(), secret.encode()):
            logger.warning(
                "webhook for phone_number_id %s skipped: signed with another app's secret", phone_number_id
            )
        else:
            routed.append((channel, batch))
    return routed


def _secrets(channels: list[ChannelRoute]) -> set[str]:
    """The app secrets that may sign a delivery: those of the channels it addresses, each its own (a
    channel without one accepts nothing). WHATSAPP_APP_SECRET is stored on the channel `bootstrap`
    made from it; it also answers for numbers no channel has any more, so that Meta is told 200 and
    does not re-deliver them for days."""
    if channels:
        return {channel.app_secret for channel in channels if channel.app_secret}
    return {settings.WHATSAPP_APP_SECRET} if settings.WHATSAPP_APP_SECRET else set()


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)
