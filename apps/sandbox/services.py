"""Writes for the sandbox: a pretend customer's message enters through the Graph API stand-in, which
signs it and posts it to our webhook exactly as Meta would."""

from __future__ import annotations

import re

import httpx
from django.conf import settings

from apps.whatsapp.models import Channel
from chatbot.exceptions import TransientError, ValidationFailed

NUMBER = re.compile(r"\d{6,15}")
NAME_MAX = 60
TEXT_MAX = 4096
STANDIN_TIMEOUT = httpx.Timeout(10.0, connect=2.0)


class StandInUnavailable(TransientError):
    code = "sandbox_standin_unavailable"


def sandbox_number_clean(value: str) -> str:
    """`value` as WhatsApp ids are written (digits only, no +); ValidationFailed otherwise."""
    digits = re.sub(r"[\s+()\-.]", "", value or "")
    if not NUMBER.fullmatch(digits):
        raise ValidationFailed(
            "A phone number of 6 to 15 digits is needed.", details={"number": ["6 to 15 digits."]}
        )
    return digits


def sandbox_message_send(*, channel: Channel, number: str, name: str, text: str) -> str:
    """Inject `text` from customer `number` into `channel`; return its wamid once our webhook took it."""
    if channel.kind != Channel.Kind.SANDBOX:
        raise ValidationFailed("Only sandbox channels take pretend customers.")
    wa_id = sandbox_number_clean(number)
    body = (text or "").strip()
    if not body or len(body) > TEXT_MAX:
        raise ValidationFailed(
            f"Write a message of 1 to {TEXT_MAX} characters.", details={"text": ["1 to 4096 characters."]}
        )
    payload = {
        "phone_number_id": channel.phone_number_id,
        "from": wa_id,
        "name": (name or "").strip()[:NAME_MAX],
        "text": body,
    }
    url = f"{settings.WHATSAPP_SANDBOX_GRAPH_URL}/_standin/inbound"
    try:
        response = httpx.post(url, json=payload, timeout=STANDIN_TIMEOUT)
    except httpx.HTTPError as exc:
        raise StandInUnavailable(
            f"The sandbox's Graph API stand-in at {settings.WHATSAPP_SANDBOX_GRAPH_URL} is not reachable "
            f"({type(exc).__name__}); `make run` starts it."
        ) from None
    data = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    if response.status_code != 200:
        raise StandInUnavailable(
            f"The stand-in refused the message: {data.get('error') or response.status_code}."
        )
    if data.get("status_code") != 200:
        # The stand-in reached our webhook, which did not take the message (e.g. a secret mismatch: 401).
        raise StandInUnavailable(
            f"The webhook answered {data.get('status_code')} {data.get('error') or ''}".strip()
            + "; check SANDBOX_APP_SECRET against the sandbox channel's app secret."
        )
    return str(data["wamid"])
