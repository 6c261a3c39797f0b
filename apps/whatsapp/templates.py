"""Meta's message template management (`/{waba-id}/message_templates`): list, submit, delete.

A sibling of cloud.py: the same HTTP client, Graph host and breaker, and Meta's errors turned into
domain errors (a refusal is a ValidationFailed carrying Meta's words; an outage a TransientError).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from apps.conversations.transport import SendError
from apps.whatsapp.cloud import GraphUnavailable, _allowed, _json_or_none, graph_url, http_client
from apps.whatsapp.models import Channel
from chatbot.circuit import Breaker
from chatbot.exceptions import ValidationFailed

logger = logging.getLogger(__name__)

FIELDS = "id,name,language,status,category,components,quality_score,rejected_reason"
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 templates: far above Meta's cap per account (250 by default)


class TemplateRefused(ValidationFailed):
    code = "template_refused"


def _url(channel: Channel) -> str:
    if not channel.waba_id:
        raise ValidationFailed(
            "The channel has no WhatsApp Business Account id (waba_id).", code="channel_without_waba"
        )
    version = settings.WHATSAPP_GRAPH_VERSION
    return f"{graph_url(channel)}/{version}/{quote(channel.waba_id, safe='')}/message_templates"


def _call(channel: Channel, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    token = channel.access_token or ""
    if not token:
        raise ValidationFailed("The channel has no access token.", code="channel_without_token")
    circuit = _allowed_or_unavailable(channel)
    try:
        response = http_client().request(method, url, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    except httpx.TransportError as exc:
        circuit.failure()
        logger.warning(
            "template call (channel %s): Graph API not reached (%s)", channel.pk, type(exc).__name__
        )
        raise GraphUnavailable("WhatsApp's API could not be reached; try again.") from None
    data = _json_or_none(response)
    if response.status_code >= 500 or response.status_code == 429:
        circuit.failure()
        raise GraphUnavailable(f"WhatsApp's API answered HTTP {response.status_code}; try again.")
    circuit.success()
    if not response.is_success or not isinstance(data, dict):
        error = _dict(data.get("error") if isinstance(data, dict) else None)
        error_data = _dict(error.get("error_data"))
        details = error.get("error_user_msg") or error_data.get("details")
        text = str(error.get("message") or f"HTTP {response.status_code}")
        if details and details != text:
            text = f"{text} ({details})"
        logger.warning(
            "template call (channel %s) refused: HTTP %s, code %s",
            channel.pk,
            response.status_code,
            error.get("code"),
        )
        raise TemplateRefused(
            f"WhatsApp refused the request: {text}"[:500], details={"meta_code": error.get("code")}
        )
    return data


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _allowed_or_unavailable(channel: Channel) -> Breaker:
    try:
        return _allowed(channel)
    except SendError as exc:  # the circuit is open: an admin is waiting, not a queue
        raise GraphUnavailable("WhatsApp's API kept failing; try again in a moment.") from exc


def templates_fetch(*, channel: Channel) -> list[dict[str, Any]]:
    """Every template of the channel's business account, following `paging.cursors.after`."""
    url = _url(channel)
    found: list[dict[str, Any]] = []
    after = ""
    for _ in range(MAX_PAGES):
        params = {"fields": FIELDS, "limit": str(PAGE_SIZE)}
        if after:
            params["after"] = after
        page = _call(channel, "GET", url, params=params)
        data = page.get("data")
        found.extend(item for item in (data if isinstance(data, list) else []) if isinstance(item, dict))
        paging = _dict(page.get("paging"))
        cursors = _dict(paging.get("cursors"))
        after = str(cursors.get("after") or "")
        # Meta leaves `next` out on the last page (the cursor alone may still be there).
        if not paging.get("next") or not after:
            return found
    logger.warning("template sync of channel %s stopped after %d pages", channel.pk, MAX_PAGES)
    return found


def template_submit(*, channel: Channel, body: dict[str, Any]) -> dict[str, Any]:
    """Submit a new template for review; Meta's answer (`id`, `status`, `category`)."""
    return _call(channel, "POST", _url(channel), json=body)


def template_remove(*, channel: Channel, name: str, meta_id: str = "") -> None:
    """Delete a template at Meta (with its id: that language only; without: every language of `name`)."""
    params = {"name": name}
    if meta_id:
        params["hsm_id"] = meta_id
    _call(channel, "DELETE", _url(channel), params=params)


def template_changes(
    delivery: dict[str, Any], fields: frozenset[str]
) -> list[tuple[str, str, dict[str, Any]]]:
    """(WABA id, field, value) of each change of a loaded delivery whose field is one of `fields`
    (Meta's account-wide template webhooks name the account in `entry[].id`, no phone number)."""
    found = []
    for entry in delivery["entry"]:
        waba_id = entry.get("id")
        for change in entry["changes"]:
            if (
                isinstance(waba_id, str)
                and isinstance(change, dict)
                and change.get("field") in fields
                and isinstance(change.get("value"), dict)
            ):
                found.append((waba_id, str(change["field"]), change["value"]))
    return found
