"""Message templates: checked here, submitted to and synced from Meta, updated by Meta's webhooks.

Meta reviews every template and decides its status, quality and (since 2025) may change its category:
our rows only follow what Meta says (sync, the submit's answer, the webhooks).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.audit.services import audit_record
from apps.campaigns.models import Template
from apps.whatsapp import templates as meta
from apps.whatsapp.models import Channel
from chatbot.exceptions import Conflict, ValidationFailed

logger = logging.getLogger(__name__)

NAME = re.compile(r"[a-z0-9_]{1,512}")
LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")
VARIABLE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")
STATUS_FIELD = "message_template_status_update"
QUALITY_FIELD = "message_template_quality_update"
CATEGORY_FIELD = "template_category_update"
TEMPLATE_FIELDS = frozenset({STATUS_FIELD, QUALITY_FIELD, CATEGORY_FIELD})


class TemplateInvalid(ValidationFailed):
    code = "template_invalid"


# --- checks --------------------------------------------------------------------------------------
def _numbers(text: str, where: str) -> list[int]:
    """The positional variables of `text` ({{1}}, {{2}}, ...), checked to run 1..n without gaps."""
    found: list[int] = []
    for raw in VARIABLE.findall(text):
        if not raw.isdigit() or not raw.isascii():
            raise TemplateInvalid(
                f"{where}: variables are numbered {{{{1}}}}, {{{{2}}}}, ...; not {{{{{raw}}}}}."
            )
        found.append(int(raw))
    distinct = sorted(set(found))
    if distinct != list(range(1, len(distinct) + 1)):
        raise TemplateInvalid(
            f"{where}: variables must run {{{{1}}}} to {{{{{len(distinct)}}}}} without gaps."
        )
    return distinct


def _examples(component: dict[str, Any], key: str) -> list[Any]:
    example = component.get("example")
    values = example.get(key) if isinstance(example, dict) else None
    return values if isinstance(values, list) else []


def _filled(values: list[Any], count: int) -> bool:
    return len(values) == count and all(isinstance(v, str) and v.strip() for v in values)


def template_variables(components: Any) -> int:
    """Check `components` as Meta's template API takes them; the body's variable count.

    Meta refuses a template whose variables lack an example each, so that is checked here with the
    rest (numbering, sizes, one body) before anything reaches Meta. Raises TemplateInvalid.
    """
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise TemplateInvalid("components must be a list of objects.")
    kinds = [str(c.get("type", "")).upper() for c in components]
    unknown = sorted(set(kinds) - set(COMPONENT_TYPES))
    if unknown:
        raise TemplateInvalid(f"Unknown component types: {unknown}.")
    if kinds.count("BODY") != 1 or any(kinds.count(kind) > 1 for kind in COMPONENT_TYPES):
        raise TemplateInvalid("A template has exactly one BODY and at most one HEADER, FOOTER and BUTTONS.")
    body_count = 0
    for component, kind in zip(components, kinds, strict=True):
        text = component.get("text", "")
        if kind in ("BODY", "FOOTER") or (kind == "HEADER" and component.get("format", "TEXT") == "TEXT"):
            if not isinstance(text, str) or not text.strip():
                raise TemplateInvalid(f"The {kind.lower()} needs a text.")
        if kind == "BODY":
            if len(text) > BODY_MAX:
                raise TemplateInvalid(f"The body has {len(text)} characters; WhatsApp allows {BODY_MAX}.")
            body_count = len(_numbers(text, "body"))
            examples = _examples(component, "body_text")
            if body_count and not (len(examples) == 1 and _filled(examples[0], body_count)):
                raise TemplateInvalid(
                    f"The body has {body_count} variables: example.body_text needs one list of {body_count} "
                    "example values (Meta requires them)."
                )
        elif kind == "HEADER" and isinstance(text, str) and text:
            if len(text) > HEADER_TEXT_MAX:
                raise TemplateInvalid(
                    f"The header has {len(text)} characters; WhatsApp allows {HEADER_TEXT_MAX}."
                )
            count = len(_numbers(text, "header"))
            if count > 1:
                raise TemplateInvalid("A text header has at most one variable, {{1}}.")
            if count and not _filled(_examples(component, "header_text"), 1):
                raise TemplateInvalid("The header's variable needs example.header_text with one value.")
        elif kind == "FOOTER":
            if VARIABLE.search(text):
                raise TemplateInvalid("A footer has no variables.")
            if len(text) > FOOTER_MAX:
                raise TemplateInvalid(f"The footer has {len(text)} characters; WhatsApp allows {FOOTER_MAX}.")
        elif kind == "BUTTONS":
            _check_buttons(component.get("buttons"))
    return body_count


def _check_buttons(buttons: Any) -> None:
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 10:
        raise TemplateInvalid("BUTTONS needs 1 to 10 buttons.")
    for button in buttons:
        if (
            not isinstance(button, dict)
            or not isinstance(button.get("text"), str)
            or not button["text"].strip()
        ):
            raise TemplateInvalid("Each button needs a type and a text.")
        if len(button["text"]) > 25:
            raise TemplateInvalid(f"Button text {button['text']!r} is over 25 characters.")
        url = button.get("url")
        if button.get("type") == "URL" and isinstance(url, str) and VARIABLE.search(url):
            if len(_numbers(url, "button URL")) != 1 or not _filled(button.get("example") or [], 1):
                raise TemplateInvalid("A URL button's {{1}} needs one example URL.")


# --- writes --------------------------------------------------------------------------------------
def _channel_of_waba(*, workspace: Any, channel: Channel) -> Channel:
    if channel.workspace_id != workspace.pk:
        raise ValidationFailed("No such channel in this workspace.", code="invalid")
    if channel.kind == Channel.Kind.WEB:
        raise ValidationFailed("WhatsApp Web numbers have no templates.", code="channel_without_waba")
    return channel


def template_create(
    *,
    workspace: Any,
    channel: Channel,
    name: str,
    language: str,
    category: str,
    components: list[dict[str, Any]],
    actor_id: int | None = None,
) -> Template:
    """Check the template, submit it to Meta for review and keep Meta's answer (status PENDING, mostly)."""
    channel = _channel_of_waba(workspace=workspace, channel=channel)
    if not NAME.fullmatch(name):
        raise TemplateInvalid("The name is lowercase letters, digits and _ (at most 512).")
    if not LANGUAGE.fullmatch(language):
        raise TemplateInvalid("The language is a code like es, en_US or es_MX.")
    if category not in Template.Category.values:
        raise TemplateInvalid(f"The category is one of {Template.Category.values}.")
    count = template_variables(components)
    if Template.objects.filter(
        workspace=workspace, waba_id=channel.waba_id, name=name, language=language
    ).exists():
        raise Conflict("A template with this name and language exists.", code="duplicate_template")
    answer = meta.template_submit(
        channel=channel,
        body={"name": name, "language": language, "category": category, "components": components},
    )
    now = timezone.now()
    try:
        template = Template.objects.create(
            workspace=workspace,
            channel=channel,
            waba_id=channel.waba_id,
            meta_id=str(answer.get("id") or ""),
            name=name,
            language=language,
            category=_choice(answer.get("category"), Template.Category, category),
            status=_choice(answer.get("status"), Template.Status, Template.Status.PENDING),
            components=components,
            variable_count=count,
            status_changed_at=now,
            synced_at=now,
        )
    except IntegrityError as exc:  # the same template submitted twice at once: Meta took one
        raise Conflict("A template with this name and language exists.", code="duplicate_template") from exc
    audit_record(workspace_id=workspace.pk, actor_id=actor_id, action="template.create", target=template)
    return template


def template_delete(*, template: Template, actor_id: int | None = None) -> None:
    """Delete the template at Meta, then here (a template Meta no longer has is deleted here alone)."""
    channel = template.channel
    if channel is not None and template.status != Template.Status.DELETED:
        meta.template_remove(channel=channel, name=template.name, meta_id=template.meta_id)
    audit_record(
        workspace_id=template.workspace_id, actor_id=actor_id, action="template.delete", target=template
    )
    template.delete()


@dataclass(frozen=True)
class SyncReport:
    created: int
    updated: int
    gone: int


def _choice(value: Any, choices: Any, default: str) -> str:
    return value if isinstance(value, str) and value in choices.values else default


def _fields_from_meta(item: dict[str, Any]) -> dict[str, Any]:
    quality = item.get("quality_score")
    components = item.get("components") if isinstance(item.get("components"), list) else []
    try:
        count = template_variables(components)
    except TemplateInvalid:
        count = 0  # Meta's own template in a shape we do not check (named variables, ...): shown as is
    reason = item.get("rejected_reason")
    return {
        "meta_id": str(item.get("id") or ""),
        "category": _choice(item.get("category"), Template.Category, Template.Category.UTILITY),
        "status": _choice(item.get("status"), Template.Status, Template.Status.PENDING),
        "quality": _choice(
            quality.get("score") if isinstance(quality, dict) else None,
            Template.Quality,
            Template.Quality.UNKNOWN,
        ),
        "components": components,
        "variable_count": count,
        "rejected_reason": str(reason)[:255] if reason and reason != "NONE" else "",
    }


def templates_sync(*, workspace: Any, channel: Channel) -> SyncReport:
    """Make our templates of the channel's business account what Meta lists (paginated); those Meta no
    longer lists are kept as DELETED, so the history of campaigns that used them still reads."""
    channel = _channel_of_waba(workspace=workspace, channel=channel)
    # Every page is read before the transaction opens: no row lock is held across Meta's answers.
    items = meta.templates_fetch(channel=channel)
    with transaction.atomic():
        return _templates_store(workspace=workspace, channel=channel, items=items)


def _templates_store(*, workspace: Any, channel: Channel, items: list[dict[str, Any]]) -> SyncReport:
    now = timezone.now()
    existing = {
        (t.name, t.language): t
        for t in Template.objects.select_for_update().filter(workspace=workspace, waba_id=channel.waba_id)
    }
    created = updated = 0
    seen: set[tuple[str, str]] = set()
    for item in items:
        name, language = str(item.get("name") or ""), str(item.get("language") or "")
        if not name or not language or (name, language) in seen:
            continue
        seen.add((name, language))
        fields = _fields_from_meta(item)
        template = existing.get((name, language))
        if template is None:
            Template.objects.create(
                workspace=workspace,
                channel=channel,
                waba_id=channel.waba_id,
                name=name,
                language=language,
                synced_at=now,
                status_changed_at=now,
                **fields,
            )
            created += 1
            continue
        changed = {key: value for key, value in fields.items() if getattr(template, key) != value}
        if "status" in changed:
            changed["status_changed_at"] = now
        Template.objects.filter(pk=template.pk).update(**changed, synced_at=now, channel=channel)
        updated += bool(changed)
    gone = [t.pk for key, t in existing.items() if key not in seen and t.status != Template.Status.DELETED]
    Template.objects.filter(pk__in=gone).update(
        status=Template.Status.DELETED, status_changed_at=now, synced_at=now
    )
    return SyncReport(created=created, updated=updated, gone=len(gone))


def template_event_apply(
    *, workspace_ids: Collection[int], waba_id: str, field: str, value: dict[str, Any]
) -> int:
    """One of Meta's template webhooks (status, quality, category) for the account `waba_id`, applied to
    the templates of `workspace_ids` (the workspaces whose channel's app secret signed it). The rows
    changed; an event for a template we do not have changes nothing (the next sync brings it)."""
    if field not in TEMPLATE_FIELDS or not workspace_ids:
        return 0
    meta_id = str(value.get("message_template_id") or "")
    name = str(value.get("message_template_name") or "")
    language = str(value.get("message_template_language") or "").replace("-", "_")
    found = Template.objects.filter(workspace_id__in=workspace_ids, waba_id=waba_id)
    found = found.filter(meta_id=meta_id) if meta_id else found.filter(name=name, language=language)
    now = timezone.now()
    changes: dict[str, Any]
    if field == STATUS_FIELD:
        event = value.get("event")
        if event not in Template.Status.values:
            logger.warning("template status event %r for %s ignored", event, meta_id or name)
            return 0
        reason = value.get("reason")
        changes = {
            "status": event,
            "status_changed_at": now,
            "rejected_reason": str(reason)[:255] if reason and reason != "NONE" else "",
        }
    elif field == QUALITY_FIELD:
        score = value.get("new_quality_score")
        if score not in Template.Quality.values:
            return 0
        changes = {"quality": score}
    else:
        # An impending change names `correct_category` (24 h ahead) and keeps `new_category` current.
        category = value.get("new_category")
        if category not in Template.Category.values:
            return 0
        changes = {"category": category}
    return found.update(**changes, updated_at=now)
