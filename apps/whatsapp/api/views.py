from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import IsAdmin, IsMember
from apps.accounts.selectors import request_workspace
from apps.conversations.api.pagination import paginated_response
from apps.whatsapp import selectors, services
from apps.whatsapp.api import serializers as s
from apps.whatsapp.models import Channel
from apps.whatsapp.status import channels_status
from chatbot.openapi import errors, paginated

INVALID = errors(
    {
        400: "Invalid input; for a Cloud channel also channel_token_invalid (WhatsApp refuses the token) or "
        "channel_not_owned (the token does not read this phone_number_id)."
    }
)
GRAPH_DOWN = errors({503: "graph_unavailable: WhatsApp's API could not check the number."})
NOT_FOUND = errors({404: "Not found in this workspace."})
CONFLICT = errors({409: "The phone_number_id belongs to another channel (told only to a proven owner)."})


def _channel(request: Request, pk: int) -> Channel:
    return selectors.channel_get(workspace=request_workspace(request), pk=pk)


class ChannelListView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(operation_id="whatsapp_channels_list", responses={200: paginated(s.ChannelOutput)})
    def get(self, request: Request) -> Response:
        channels = selectors.channel_list(workspace=request_workspace(request))
        return paginated_response(request, channels, s.ChannelOutput)

    @extend_schema(
        request=s.ChannelInput, responses={201: s.ChannelOutput, **INVALID, **CONFLICT, **GRAPH_DOWN}
    )
    def post(self, request: Request) -> Response:
        data = s.ChannelInput(data=request.data)
        data.is_valid(raise_exception=True)
        channel = services.channel_create(
            workspace=request_workspace(request), actor_id=request.user.pk, **data.validated_data
        )
        return Response(s.ChannelOutput(channel).data, status=status.HTTP_201_CREATED)


class ChannelDetailView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: s.ChannelOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ChannelOutput(_channel(request, pk)).data)

    @extend_schema(
        request=s.ChannelInput,
        responses={200: s.ChannelOutput, **INVALID, **NOT_FOUND, **CONFLICT, **GRAPH_DOWN},
    )
    def patch(self, request: Request, pk: int) -> Response:
        channel = _channel(request, pk)
        data = s.ChannelInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        channel = services.channel_update(channel=channel, data=data.validated_data, actor_id=request.user.pk)
        return Response(s.ChannelOutput(channel).data)

    @extend_schema(responses={204: None, **NOT_FOUND})
    def delete(self, request: Request, pk: int) -> Response:
        services.channel_delete(channel=_channel(request, pk), actor_id=request.user.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WhatsAppStatusView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses={200: s.WhatsAppStatusOutput})
    def get(self, request: Request) -> Response:
        now = timezone.now()
        body = {
            "generated_at": now,
            "channels": channels_status(
                channels=selectors.channel_list(workspace=request_workspace(request)), now=now
            ),
        }
        return Response(s.WhatsAppStatusOutput(body).data)
