"""What staff do beside replying: give a conversation to a teammate, leave internal notes, keep canned
replies. Notes and canned replies never reach WhatsApp or the assistant: only staff screens read them."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from apps.accounts.models import ROLE_RANK, Membership, Role
from apps.audit.services import audit_record
from apps.conversations.models import CannedReply, Contact, Conversation, InternalNote, Message
from apps.conversations.selectors import window_open
from apps.conversations.services.actions import conversation_staff_send
from apps.conversations.transport import transport_for
from apps.live.services import live_publish
from chatbot.exceptions import Conflict, ValidationFailed

VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@transaction.atomic
def conversation_assign(*, conversation: Conversation, assignee_id: int | None, user: Any) -> Conversation:
    """Give the conversation to a member who may answer (agent or above), or to nobody (None).

    Assigning does not change who answers (the bot or a person): taking over does. Closed
    conversations are history and keep their assignee.
    """
    if assignee_id is not None:
        role = (
            Membership.objects.filter(workspace_id=conversation.workspace_id, user_id=assignee_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None or ROLE_RANK.get(role, -1) < ROLE_RANK[Role.AGENT]:
            raise ValidationFailed(
                _("Only a member who may answer (agent or above) can be assigned."),
                details={"assignee": [str(assignee_id)]},
            )
    changed = (
        Conversation.objects.filter(pk=conversation.pk)
        .exclude(status=Conversation.Status.CLOSED)
        .update(assignee_id=assignee_id)
    )
    if not changed:
        raise Conflict(_("The conversation is closed."), code="conversation_closed")
    conversation.assignee_id = assignee_id
    # The cached related user (select_related) would otherwise still name the previous assignee.
    conversation._state.fields_cache.pop("assignee", None)
    audit_record(
        workspace_id=conversation.workspace_id,
        actor_id=user.pk if user is not None else None,
        action="conversation.assign",
        target=conversation,
    )
    live_publish(workspace_id=conversation.workspace_id, kind="conversation", conversation_id=conversation.pk)
    return conversation


@transaction.atomic
def note_add(*, conversation: Conversation, user: Any, body: str) -> InternalNote:
    """Leave a note for the team on the conversation (staff screens only)."""
    text = body.strip()
    if not text:
        raise ValidationFailed(_("Write a note first."), details={"body": [_("This field is required.")]})
    if len(text) > InternalNote.BODY_LIMIT:
        raise ValidationFailed(
            _("A note is at most %(limit)d characters.") % {"limit": InternalNote.BODY_LIMIT},
            details={"body": [str(InternalNote.BODY_LIMIT)]},
        )
    note = InternalNote.objects.create(
        workspace_id=conversation.workspace_id, conversation=conversation, author=user, body=text
    )
    live_publish(
        workspace_id=conversation.workspace_id,
        kind="note",
        conversation_id=conversation.pk,
        payload={"note_id": note.pk},
    )
    return note


def canned_reply_create(*, workspace_id: int, title: str, body: str) -> CannedReply:
    title, body = title.strip(), body.strip()
    if not title or not body:
        raise ValidationFailed(_("A canned reply needs a title and a text."))
    if len(title) > CannedReply.TITLE_LIMIT or len(body) > CannedReply.BODY_LIMIT:
        raise ValidationFailed(_("The title or the text is too long."))
    try:
        with transaction.atomic():
            return CannedReply.objects.create(workspace_id=workspace_id, title=title, body=body)
    except IntegrityError as exc:
        raise Conflict(_("A canned reply with this title exists already."), code="duplicate") from exc


def canned_reply_delete(*, reply: CannedReply) -> None:
    reply.delete()


def canned_reply_render(*, reply: CannedReply, contact: Contact, agent_name: str) -> str:
    """The reply's text with its variables filled in for this customer; an unknown variable stays as
    written, so staff see it before sending rather than the customer seeing a blank."""
    first = (
        (contact.name or contact.profile_name).split(" ")[0] if (contact.name or contact.profile_name) else ""
    )
    values = {
        "name": contact.name or contact.profile_name,
        "first_name": first,
        "number": f"+{contact.wa_id}" if contact.wa_id else "",
        "agent": agent_name,
    }
    values.update({str(k): str(v) for k, v in (contact.attributes or {}).items() if k not in values})

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return value if value else match.group(0)

    return VARIABLE.sub(fill, reply.body)


ATTACHMENT_KINDS = ("image", "video", "document", "audio")
LINK_LIMIT = 2000
CAPTION_LIMIT = 1024  # Meta's limit for a media caption


def conversation_attachment_send(
    *, conversation: Conversation, user: Any, kind: str, link: str, caption: str = ""
) -> list[Message]:
    """Send a file WhatsApp fetches from an https link (image, video, document or audio), through the
    queue like a reply: the same 24-hour window, the same take-over."""
    link, caption = link.strip(), caption.strip()
    if kind not in ATTACHMENT_KINDS:
        raise ValidationFailed(_("Choose an image, a video, a document or an audio file."))
    parts = urlsplit(link)
    if (
        parts.scheme != "https"
        or not parts.hostname
        or len(link) > LINK_LIMIT
        or any(c.isspace() for c in link)
    ):
        raise ValidationFailed(_("Give the file's https:// link (WhatsApp fetches it from there)."))
    if len(caption) > CAPTION_LIMIT:
        raise ValidationFailed(
            _("A caption is at most %(limit)d characters.") % {"limit": CAPTION_LIMIT},
        )
    content: dict[str, Any] = {"link": link}
    if caption and kind != "audio":  # WhatsApp takes no caption on audio
        content["caption"] = caption
    if kind == "document":
        content["filename"] = PurePosixPath(unquote(parts.path)).name or "document"
    return conversation_staff_send(
        conversation=conversation, user=user, body=content.get("caption", ""), type=kind, content=content
    )


UPLOAD_LIMIT = 16 * 1024 * 1024  # bytes; WhatsApp's cap for video and audio (images: 5 MB)
IMAGE_LIMIT = 5 * 1024 * 1024
# The MIME types WhatsApp takes per kind (Meta's "supported media types").
UPLOAD_KINDS = {
    "image/jpeg": "image",
    "image/png": "image",
    "video/mp4": "video",
    "video/3gpp": "video",
    "audio/aac": "audio",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/ogg": "audio",
    "text/plain": "document",
    "application/pdf": "document",
    "application/msword": "document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "document",
    "application/vnd.ms-excel": "document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "document",
    "application/vnd.ms-powerpoint": "document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "document",
}


def conversation_file_send(
    *, conversation: Conversation, user: Any, content: bytes, mime_type: str, filename: str, caption: str = ""
) -> list[Message]:
    """Upload a file from staff's computer to WhatsApp, then send it through the queue like a reply.

    The upload is a call to WhatsApp made now (the web request waits for it); the send is queued. A
    refused upload raises the transport's SendError and nothing is queued.
    """
    kind = UPLOAD_KINDS.get(mime_type.split(";")[0].strip().lower())
    if kind is None:
        raise ValidationFailed(
            _(
                "WhatsApp does not take this kind of file: send a JPEG or PNG image, an MP4 video, an audio file, or a PDF or Office document."
            )
        )
    limit = IMAGE_LIMIT if kind == "image" else UPLOAD_LIMIT
    if not content or len(content) > limit:
        raise ValidationFailed(
            _("The file is empty or larger than %(mb)d MB.") % {"mb": limit // (1024 * 1024)}
        )
    caption = caption.strip()
    if len(caption) > CAPTION_LIMIT:
        raise ValidationFailed(_("A caption is at most %(limit)d characters.") % {"limit": CAPTION_LIMIT})
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict(_("The conversation is closed."), code="conversation_closed")
    if not window_open(conversation=conversation):
        # Checked before the upload too: a file for a closed window would be uploaded for nothing.
        raise Conflict(
            _("The customer's 24-hour window is closed; only a template can be sent."), code="window_closed"
        )
    name = PurePosixPath(filename.replace("\\", "/")).name[:240] or kind
    media_id = transport_for(conversation.channel).upload_media(
        conversation.channel, content=content, mime_type=mime_type, filename=name
    )
    message: dict[str, Any] = {"id": media_id}
    if caption and kind != "audio":
        message["caption"] = caption
    if kind == "document":
        message["filename"] = name
    return conversation_staff_send(
        conversation=conversation, user=user, body=message.get("caption", ""), type=kind, content=message
    )
