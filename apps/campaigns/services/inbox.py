"""What staff send from the inbox besides text: an approved template (the only way back to a customer
whose 24-hour window closed) and, inside the window, reply buttons and lists."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from apps.campaigns.models import Template
from apps.campaigns.services.templates import VARIABLE
from apps.conversations.models import Conversation, Message
from apps.conversations.services.actions import conversation_staff_send
from apps.conversations.transport import OutboundRequest
from apps.whatsapp.cloud import request_problem
from chatbot.exceptions import Conflict, ValidationFailed

SENDABLE = (Template.Status.APPROVED, Template.Status.REINSTATED)
PARAMETER_MAX = 1024


def _component(template: Template, kind: str) -> dict[str, Any]:
    return next((c for c in template.components if str(c.get("type", "")).upper() == kind), {})


def template_render(
    *, template: Template, parameters: list[str], header_parameters: list[str] | None = None
) -> str:
    """The text the customer will read (header, body, footer with the values in), for the inbox's thread."""
    parts = []
    for kind, values in (("HEADER", header_parameters or []), ("BODY", parameters), ("FOOTER", [])):
        text = _component(template, kind).get("text")
        if isinstance(text, str) and text:
            parts.append(_fill(text, values))
    return "\n\n".join(parts)


def _fill(text: str, values: list[str]) -> str:
    return VARIABLE.sub(lambda match: _value(values, match.group(1)), text)


def _value(values: list[str], raw: str) -> str:
    index = int(raw) - 1 if raw.isdigit() else -1
    return values[index] if 0 <= index < len(values) else "{{" + raw + "}}"


MEDIA_HEADERS = ("IMAGE", "VIDEO", "DOCUMENT")


def media_header(template: Template) -> str:
    """IMAGE, VIDEO or DOCUMENT when the template's header is one ('' for text or none)."""
    kind = str(_component(template, "HEADER").get("format", "")).upper()
    return kind if kind in MEDIA_HEADERS else ""


# RFC 3986's characters: what Meta's fetcher and the API schema's `format: uri` accept.
_URI_SAFE = "-._~:/?#[]@!$&'()*+,;=%"
_URI = re.compile(r"^https://[A-Za-z0-9" + re.escape(_URI_SAFE) + r"]+$")


def media_link_clean(value: str) -> str:
    """A media header's link as an ASCII https URI: an international host becomes its IDNA (punycode)
    form and other non-ASCII characters are percent-encoded, so a link pasted from a browser's address
    bar is taken as written there. Raises django's ValidationError for anything else."""
    value = value.strip()
    if not value:
        return ""
    message = "Give the public https:// link of the image, video or document."
    try:
        parts = urlsplit(value)
        host = (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port
    except (ValueError, UnicodeError) as exc:
        raise ValidationError(message, code="invalid") from exc
    if parts.scheme.lower() != "https" or not host or parts.username or parts.password:
        raise ValidationError(message, code="invalid")
    netloc = host if port is None else f"{host}:{port}"
    path, query, fragment = (quote(part, safe=_URI_SAFE.replace("#", "")) for part in parts[2:])
    link = urlunsplit(("https", netloc, path, query, fragment))
    if not _URI.match(link) or len(link) > 1024:
        raise ValidationError(message, code="invalid")
    URLValidator(schemes=["https"], message=message)(link)
    return link


def header_variable_count(template: Template) -> int:
    """How many {{n}} the template's text header takes (Meta allows one; 0 without a text header)."""
    text = _component(template, "HEADER").get("text")
    return len(set(VARIABLE.findall(text))) if isinstance(text, str) else 0


def url_button_indexes(template: Template) -> list[int]:
    """Positions (Meta's button `index`) of the URL buttons whose link ends in a variable: each takes
    one value per message, the end of its link."""
    buttons = _component(template, "BUTTONS").get("buttons") or []
    return [
        index
        for index, button in enumerate(buttons)
        if isinstance(button, dict)
        and str(button.get("type", "")).upper() == "URL"
        and VARIABLE.search(str(button.get("url", "")))
    ]


def template_message_content(
    *,
    template: Template,
    parameters: list[str],
    header_parameters: list[str] | None = None,
    header_media_url: str = "",
    button_parameters: list[str] | None = None,
) -> dict[str, Any]:
    """The Cloud API's `template` object for this template with these values; a media header takes
    the public HTTPS link of its image, video or document (Meta fetches it); `button_parameters` are
    the link endings of its URL buttons with a variable, in their order. Raises ValidationFailed."""
    header_parameters = header_parameters or []
    button_parameters = button_parameters or []
    media = media_header(template)
    if media and not header_media_url.startswith("https://"):
        raise ValidationFailed(
            f"The template's header is a {media.lower()}: give its public https:// link.",
            code="template_parameters",
        )
    if len(parameters) != template.variable_count:
        raise ValidationFailed(
            f"The template {template.name} takes {template.variable_count} parameters; {len(parameters)} given.",
            code="template_parameters",
        )
    header_count = header_variable_count(template)
    if len(header_parameters) != header_count:
        raise ValidationFailed(
            f"The header takes {header_count} parameters; {len(header_parameters)} given.",
            code="template_parameters",
        )
    buttons = url_button_indexes(template)
    if len(button_parameters) != len(buttons):
        raise ValidationFailed(
            f"The template's links take {len(buttons)} parameters; {len(button_parameters)} given.",
            code="template_parameters",
        )
    if any(len(value.split()) != 1 for value in button_parameters):
        # The value ends a link: a space would cut it.
        raise ValidationFailed("A link's parameter has no spaces.", code="template_parameters")
    for value in [*parameters, *header_parameters, *button_parameters]:
        if not value.strip() or len(value) > PARAMETER_MAX or "\n" in value:
            # Meta refuses empty parameters and new lines in them (error 132018).
            raise ValidationFailed(
                "Each parameter is a non-empty text on one line (at most 1,024 characters).",
                code="template_parameters",
            )
    components: list[dict[str, Any]] = []
    if media:
        kind = media.lower()
        components.append(
            {"type": "header", "parameters": [{"type": kind, kind: {"link": header_media_url}}]}
        )
    if header_parameters:
        components.append(
            {"type": "header", "parameters": [{"type": "text", "text": v} for v in header_parameters]}
        )
    if parameters:
        components.append({"type": "body", "parameters": [{"type": "text", "text": v} for v in parameters]})
    for index, value in zip(buttons, button_parameters, strict=True):
        components.append(
            {
                "type": "button",
                "sub_type": "url",
                "index": str(index),
                "parameters": [{"type": "text", "text": value}],
            }
        )
    content: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
    if components:
        content["components"] = components
    return content


def conversation_template_send(
    *,
    conversation: Conversation,
    user: Any,
    template: Template,
    parameters: list[str],
    header_parameters: list[str] | None = None,
    button_parameters: list[str] | None = None,
) -> list[Message]:
    """Queue an approved template to the conversation's customer, window open or not.

    Refused (409) when the template is not approved, belongs to another business account than the
    conversation's number, or is marketing and the customer opted out of marketing.
    """
    if template.workspace_id != conversation.workspace_id:
        raise ValidationFailed("No such template in this workspace.", code="invalid")
    if template.status not in SENDABLE:
        raise Conflict(
            f"The template is {template.status.lower()}, not approved.", code="template_not_approved"
        )
    channel = conversation.channel
    if channel.waba_id and template.waba_id != channel.waba_id:
        raise Conflict(
            "The template belongs to another WhatsApp Business Account.", code="template_other_account"
        )
    if template.category == Template.Category.MARKETING and conversation.contact.opted_out:
        raise Conflict("The customer opted out of marketing messages.", code="opted_out")
    content = template_message_content(
        template=template,
        parameters=parameters,
        header_parameters=header_parameters,
        button_parameters=button_parameters,
    )
    body = template_render(
        template=template, parameters=parameters, header_parameters=header_parameters or []
    )
    return conversation_staff_send(
        conversation=conversation, user=user, body=body, type="template", content=content
    )


def conversation_interactive_send(
    *, conversation: Conversation, user: Any, content: dict[str, Any]
) -> list[Message]:
    """Queue reply buttons or a list (`interactive.type` button or list) inside the 24-hour window,
    checked against WhatsApp's limits first."""
    if content.get("type") not in ("button", "list"):
        raise ValidationFailed("An interactive message here is of type button or list.", code="invalid")
    problem = request_problem(
        OutboundRequest(message_uid="", to="check", type="interactive", content=content)
    )
    if problem:
        raise ValidationFailed(problem, code="invalid_interactive")
    body = content["body"]["text"]
    return conversation_staff_send(
        conversation=conversation, user=user, body=body, type="interactive", content=content
    )
