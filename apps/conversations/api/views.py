from __future__ import annotations

import csv
import mimetypes
from collections.abc import Iterator
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import IsMember, IsSupervisor, role_required
from apps.accounts.selectors import request_workspace
from apps.conversations import selectors
from apps.conversations.api import serializers as s
from apps.conversations.api.media_types import CSVBodyParser, JSONErrorsNegotiation
from apps.conversations.api.pagination import paginated_response
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import actions, contacts, desk, outbound
from chatbot.exceptions import ValidationFailed
from chatbot.openapi import errors, paginated
from chatbot.serializers import QueryInput

AgentsOnly = role_required(read=Role.AGENT, write=Role.AGENT)
MembersReadSupervisorsWrite = role_required(read=Role.VIEWER, write=Role.SUPERVISOR)
INVALID = errors({400: "Invalid input."})
NOT_FOUND = errors({404: "Not found in this workspace."})
CONFLICT = errors({409: "Not allowed in the current state."})
ERRORS = {**INVALID, **NOT_FOUND}


def _filters(serializer: type[QueryInput], request: Request) -> dict[str, Any]:
    data = serializer(data=request.query_params)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


def _body(serializer: type[QueryInput], request: Request) -> dict[str, Any]:
    data = serializer(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


# --- conversations --------------------------------------------------------------------------
def _conversation(request: Request, pk: int) -> Conversation:
    return selectors.conversation_get(workspace=request_workspace(request), pk=pk)


class ConversationListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="conversations_list",
        parameters=[s.ConversationFilter],
        responses={200: paginated(s.ConversationOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _filters(s.ConversationFilter, request)
        conversations = selectors.conversation_list(
            workspace=request_workspace(request), user_id=int(request.user.pk or 0), **filters
        )
        return paginated_response(request, conversations, s.ConversationOutput)


class ConversationDetailView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses={200: s.ConversationOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ConversationOutput(_conversation(request, pk)).data)


class ConversationMessagesView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses={200: paginated(s.MessageOutput), **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        messages = selectors.conversation_messages(conversation=_conversation(request, pk))
        return paginated_response(request, messages, s.MessageOutput)


class ConversationReplyView(APIView):
    permission_classes = [IsMember]

    @extend_schema(request=s.ReplyInput, responses={201: s.MessageOutput(many=True), **ERRORS, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        data = s.ReplyInput(data=request.data)
        data.is_valid(raise_exception=True)
        queued = actions.conversation_reply(
            conversation=_conversation(request, pk), user=request.user, body=data.validated_data["body"]
        )
        return Response(s.MessageOutput(queued, many=True).data, status=status.HTTP_201_CREATED)


class _ConversationActionView(APIView):
    permission_classes = [IsMember]

    def act(self, conversation: Conversation, request: Request) -> None:
        raise NotImplementedError

    @extend_schema(request=None, responses={200: s.ConversationOutput, **NOT_FOUND, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        self.act(_conversation(request, pk), request)
        return Response(s.ConversationOutput(_conversation(request, pk)).data)


class ConversationTakeoverView(_ConversationActionView):
    def act(self, conversation: Conversation, request: Request) -> None:
        actions.conversation_takeover(conversation=conversation, user=request.user)


class ConversationHandbackView(_ConversationActionView):
    def act(self, conversation: Conversation, request: Request) -> None:
        actions.conversation_handback(conversation=conversation, user=request.user)


class ConversationCloseView(_ConversationActionView):
    def act(self, conversation: Conversation, request: Request) -> None:
        actions.conversation_close(conversation=conversation, user=request.user)


class ConversationReadView(_ConversationActionView):
    def act(self, conversation: Conversation, request: Request) -> None:
        actions.conversation_mark_read(conversation=conversation)


class ConversationAssignView(APIView):
    permission_classes = [IsMember]

    @extend_schema(request=s.AssignInput, responses={200: s.ConversationOutput, **ERRORS, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        conversation = _conversation(request, pk)
        data = _body(s.AssignInput, request)
        desk.conversation_assign(conversation=conversation, assignee_id=data["assignee"], user=request.user)
        return Response(s.ConversationOutput(_conversation(request, pk)).data)


class ConversationNotesView(APIView):
    """Staff's internal notes: never sent to the customer, never given to the assistant."""

    permission_classes = [IsMember]

    @extend_schema(responses={200: paginated(s.NoteOutput), **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        notes = selectors.conversation_notes(conversation=_conversation(request, pk))
        return paginated_response(request, notes, s.NoteOutput)

    @extend_schema(request=s.NoteInput, responses={201: s.NoteOutput, **ERRORS})
    def post(self, request: Request, pk: int) -> Response:
        conversation = _conversation(request, pk)
        data = _body(s.NoteInput, request)
        note = desk.note_add(conversation=conversation, user=request.user, body=data["body"])
        return Response(s.NoteOutput(note).data, status=status.HTTP_201_CREATED)


class ConversationAttachmentView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        request=s.AttachmentInput, responses={201: s.MessageOutput(many=True), **ERRORS, **CONFLICT}
    )
    def post(self, request: Request, pk: int) -> Response:
        conversation = _conversation(request, pk)
        data = _body(s.AttachmentInput, request)
        queued = desk.conversation_attachment_send(
            conversation=conversation,
            user=request.user,
            kind=data["kind"],
            link=data["link"],
            caption=data.get("caption", ""),
        )
        return Response(s.MessageOutput(queued, many=True).data, status=status.HTTP_201_CREATED)


# --- canned replies -------------------------------------------------------------------------
class CannedReplyListView(APIView):
    permission_classes = [AgentsOnly]

    @extend_schema(
        operation_id="canned_replies_list",
        parameters=[s.CannedReplyFilter],
        responses={200: paginated(s.CannedReplyOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _filters(s.CannedReplyFilter, request)
        replies = selectors.canned_reply_list(workspace=request_workspace(request), **filters)
        return paginated_response(request, replies, s.CannedReplyOutput)

    @extend_schema(request=s.CannedReplyInput, responses={201: s.CannedReplyOutput, **INVALID, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = _body(s.CannedReplyInput, request)
        reply = desk.canned_reply_create(workspace_id=request_workspace(request).pk, **data)
        return Response(s.CannedReplyOutput(reply).data, status=status.HTTP_201_CREATED)


class CannedReplyDetailView(APIView):
    permission_classes = [role_required(read=Role.AGENT, write=Role.SUPERVISOR)]

    @extend_schema(responses={200: s.CannedReplyOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        reply = selectors.canned_reply_get(workspace=request_workspace(request), pk=pk)
        return Response(s.CannedReplyOutput(reply).data)

    @extend_schema(responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        reply = selectors.canned_reply_get(workspace=request_workspace(request), pk=pk)
        desk.canned_reply_delete(reply=reply)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- contacts -------------------------------------------------------------------------------
def _contact(request: Request, pk: int) -> Contact:
    return selectors.contact_get(workspace=request_workspace(request), pk=pk)


class ContactListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="contacts_list",
        parameters=[s.ContactFilter],
        responses={200: paginated(s.ContactOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        contacts_found = selectors.contact_list(
            workspace=request_workspace(request), **_filters(s.ContactFilter, request)
        )
        return paginated_response(request, contacts_found, s.ContactOutput)

    @extend_schema(request=s.ContactInput, responses={201: s.ContactOutput, **INVALID, **CONFLICT})
    def post(self, request: Request) -> Response:
        data = s.ContactInput(data=request.data)
        data.is_valid(raise_exception=True)
        contact = contacts.contact_create(workspace=request_workspace(request), **data.validated_data)
        return Response(s.ContactOutput(contact).data, status=status.HTTP_201_CREATED)


class ContactDetailView(APIView):
    def get_permissions(self) -> list[BasePermission]:
        # Any agent edits a contact; forgetting one (and their conversations) takes a supervisor.
        return [IsSupervisor() if self.request.method == "DELETE" else IsMember()]

    @extend_schema(responses={200: s.ContactOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ContactOutput(_contact(request, pk)).data)

    @extend_schema(request=s.ContactInput, responses={200: s.ContactOutput, **ERRORS, **CONFLICT})
    def patch(self, request: Request, pk: int) -> Response:
        contact = _contact(request, pk)
        data = s.ContactInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        contact = contacts.contact_update(contact=contact, data=data.validated_data)
        return Response(s.ContactOutput(contact).data)

    @extend_schema(responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        contacts.contact_delete(contact=_contact(request, pk), actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactImportView(APIView):
    permission_classes = [IsMember]
    parser_classes = [MultiPartParser, CSVBodyParser]

    @extend_schema(
        request={"multipart/form-data": s.ContactImportInput, "text/csv": OpenApiTypes.BINARY},
        responses={
            200: s.ContactImportOutput,
            **errors({400: "Not a CSV file with a wa_id column.", 413: "Larger than 5 MB."}),
        },
    )
    def post(self, request: Request) -> Response:
        upload = request.data.get("file") if isinstance(request.data, dict) else None
        if not isinstance(upload, UploadedFile):
            raise ValidationFailed("Send the CSV as the multipart field 'file' or as a text/csv body.")
        if upload.size is not None and upload.size > contacts.MAX_IMPORT_BYTES:
            raise contacts.PayloadTooLarge(contacts.IMPORT_TOO_LARGE)
        body = upload.read(contacts.MAX_IMPORT_BYTES + 1)
        report = contacts.contacts_import_csv(workspace=request_workspace(request), data=body)
        return Response(s.ContactImportOutput(report).data)


class _Echo:
    """A file-like whose write returns the line, so csv.writer can feed a streaming answer."""

    def write(self, value: str) -> str:
        return value


class ContactExportView(APIView):
    permission_classes = [IsMember]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request) -> StreamingHttpResponse:
        writer = csv.writer(_Echo())
        rows = contacts.contacts_export_rows(
            contacts=selectors.contact_list(workspace=request_workspace(request))
        )
        lines: Iterator[str] = (writer.writerow(row) for row in rows)
        response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="contacts.csv"'
        return response


# --- queue ----------------------------------------------------------------------------------
def _queue_item(request: Request, pk: int) -> Message:
    return selectors.queue_item_get(workspace=request_workspace(request), pk=pk)


class QueueListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="queue_list",
        parameters=[s.QueueFilter],
        responses={200: paginated(s.QueueItemOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        rows = selectors.queue_list(workspace=request_workspace(request), **_filters(s.QueueFilter, request))
        return paginated_response(request, rows, s.QueueItemOutput)


class QueueCancelView(APIView):
    permission_classes = [MembersReadSupervisorsWrite]

    @extend_schema(request=None, responses={200: s.QueueItemOutput, **NOT_FOUND, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        return Response(s.QueueItemOutput(outbound.message_cancel(message=_queue_item(request, pk))).data)


class QueueRetryView(APIView):
    permission_classes = [MembersReadSupervisorsWrite]

    @extend_schema(request=None, responses={200: s.QueueItemOutput, **NOT_FOUND, **CONFLICT})
    def post(self, request: Request, pk: int) -> Response:
        return Response(s.QueueItemOutput(outbound.message_retry_now(message=_queue_item(request, pk))).data)


# --- media ----------------------------------------------------------------------------------
# Shown in the browser only when harmless; anything else (HTML, SVG, ...) is a download.
INLINE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "audio/", "video/", "application/pdf")


class MessageMediaView(APIView):
    permission_classes = [AgentsOnly]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONErrorsNegotiation

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its own Content-Type."
            ),
            **errors(
                {404: "No such message, or it has no media.", 502: "WhatsApp did not hand the media over."}
            ),
        }
    )
    def get(self, request: Request, pk: int) -> HttpResponse:
        message = selectors.message_get(workspace=request_workspace(request), pk=pk)
        media = selectors.message_media(message=message)
        mime_type = media.mime_type or "application/octet-stream"
        response = HttpResponse(media.content, content_type=mime_type)
        base_type = mime_type.split(";")[0].strip().lower()
        inline = base_type.startswith(INLINE_TYPES)
        filename = media.filename or f"message-{message.pk}{mimetypes.guess_extension(base_type) or ''}"
        disposition = content_disposition_header(not inline, filename)
        if disposition:
            response["Content-Disposition"] = disposition
        # Customer-sent bytes must never run as a page of ours.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, max-age=300"
        return response
