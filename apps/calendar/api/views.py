from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import IsAdmin, IsMember, role_required
from apps.accounts.selectors import request_workspace
from apps.calendar import selectors, services
from apps.calendar.api import serializers as s
from apps.calendar.models import Booking, Service
from chatbot.openapi import errors, paginated
from chatbot.pagination import Pagination
from chatbot.serializers import QueryInput

# Calendars and services are the business's set-up (admins); bookings are everyday work (agents).
MembersReadAdminsWrite = role_required(read=Role.VIEWER, write=Role.ADMIN)
INVALID = errors({400: "Invalid input."})
NOT_FOUND = errors({404: "Not found in this workspace."})
TAKEN = errors({409: "That time is taken (details.next_start is the next free one)."})
FORBIDDEN = errors({403: "The authorization was started by another session, used already or expired."})
UNAVAILABLE = errors({503: "The calendar provider cannot be reached; try again."})


def _valid(serializer: type[QueryInput], data: Any, *, partial: bool = False) -> dict[str, Any]:
    checked = serializer(data=data, partial=partial)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


def _paginated(request: Request, rows: Any, output: Any) -> Response:
    paginator = Pagination()
    page: list[Any] | None = paginator.paginate_queryset(rows, request)
    return paginator.get_paginated_response(output(page, many=True).data)


def _session_key(request: Request) -> str:
    """The staff login the connect flow is bound to: the JWT's login session, or the cookie session."""
    token = request.auth
    if token is not None and hasattr(token, "get") and token.get("sid"):
        return str(token.get("sid"))
    return str(getattr(request._request, "session", None) and request._request.session.session_key or "")


def _redirect_uri(request: Request) -> str:
    return settings.CALENDAR_OAUTH_REDIRECT_URL or request.build_absolute_uri("/calendar/callback")


def _service_fields(data: dict[str, Any]) -> dict[str, Any]:
    if "connection" in data:
        data["connection_id"] = data.pop("connection")
    if data.get("price") is not None:
        data["price"] = Decimal(str(round(data["price"], 2)))
    return data


# --- connections ------------------------------------------------------------------------------------
class ConnectionListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(operation_id="calendar_connections_list", responses={200: paginated(s.ConnectionOutput)})
    def get(self, request: Request) -> Response:
        return _paginated(
            request, selectors.connection_list(workspace=request_workspace(request)), s.ConnectionOutput
        )


class ConnectStartView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="calendar_connections_connect",
        request=s.ConnectStartInput,
        responses={200: s.ConnectStartOutput, **INVALID, **FORBIDDEN, **UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.ConnectStartInput, request.data)
        url = services.connection_connect_start(
            workspace_id=request_workspace(request).pk,
            user_id=int(request.user.pk or 0),
            session_key=_session_key(request),
            provider=data["provider"],
            redirect_uri=_redirect_uri(request),
        )
        return Response({"authorization_url": url})


class ConnectFinishView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="calendar_connections_callback",
        request=s.ConnectFinishInput,
        responses={200: s.ConnectionOutput, **INVALID, **FORBIDDEN, **UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.ConnectFinishInput, request.data)
        params = {k: v for k, v in data.items() if v}
        connection = services.connection_connect_finish(
            workspace_id=request_workspace(request).pk,
            user_id=int(request.user.pk or 0),
            session_key=_session_key(request),
            params=params,
        )
        return Response(s.ConnectionOutput(connection).data)


class DisconnectView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="calendar_connections_disconnect",
        request=None,
        responses={200: s.ConnectionOutput, **NOT_FOUND},
    )
    def post(self, request: Request, pk: int) -> Response:
        connection = selectors.connection_get(workspace=request_workspace(request), pk=pk)
        services.connection_disconnect(connection=connection, actor_id=request.user.pk)
        return Response(s.ConnectionOutput(connection).data)


# --- services ---------------------------------------------------------------------------------------
def _service(request: Request, pk: int) -> Service:
    return selectors.service_get(workspace=request_workspace(request), pk=pk)


class ServiceListView(APIView):
    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(operation_id="calendar_services_list", responses={200: paginated(s.ServiceOutput)})
    def get(self, request: Request) -> Response:
        return _paginated(
            request, selectors.service_list(workspace=request_workspace(request)), s.ServiceOutput
        )

    @extend_schema(
        operation_id="calendar_services_create",
        request=s.ServiceInput,
        responses={201: s.ServiceOutput, **INVALID, **NOT_FOUND},
    )
    def post(self, request: Request) -> Response:
        fields = _service_fields(_valid(s.ServiceInput, request.data))
        service = services.service_create(
            workspace_id=request_workspace(request).pk, actor_id=request.user.pk, **fields
        )
        return Response(s.ServiceOutput(service).data, status=status.HTTP_201_CREATED)


class ServiceDetailView(APIView):
    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(operation_id="calendar_services_retrieve", responses={200: s.ServiceOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.ServiceOutput(_service(request, pk)).data)

    @extend_schema(
        operation_id="calendar_services_partial_update",
        request=s.ServiceUpdateInput,
        responses={200: s.ServiceOutput, **INVALID, **NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        service = _service(request, pk)
        fields = _service_fields(_valid(s.ServiceUpdateInput, request.data, partial=True))
        services.service_update(service=service, actor_id=request.user.pk, **fields)
        return Response(s.ServiceOutput(_service(request, pk)).data)


class ServiceSlotsView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="calendar_services_slots",
        parameters=[s.SlotsQuery],
        responses={200: s.SlotsOutput, **INVALID, **NOT_FOUND},
    )
    def get(self, request: Request, pk: int) -> Response:
        service = _service(request, pk)
        query = _valid(s.SlotsQuery, request.query_params)
        start = query.get("start") or timezone.now()
        slots = services.service_slots(
            service=service, start=start, end=start + dt.timedelta(days=query["days"]), limit=query["limit"]
        )
        _, zone = selectors.business_hours(service.workspace_id)
        return Response({"timezone": zone.key, "slots": [slot.isoformat() for slot in slots]})


# --- bookings ---------------------------------------------------------------------------------------
def _booking(request: Request, pk: int) -> Booking:
    return selectors.booking_get(workspace=request_workspace(request), pk=pk)


class BookingListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="calendar_bookings_list",
        parameters=[s.BookingFilter],
        responses={200: paginated(s.BookingOutput), **INVALID},
    )
    def get(self, request: Request) -> Response:
        filters = _valid(s.BookingFilter, request.query_params)
        bookings = selectors.booking_list(
            workspace=request_workspace(request), start=filters.get("start"), end=filters.get("end")
        )
        if filters.get("status"):
            bookings = bookings.filter(status=filters["status"])
        return _paginated(request, bookings, s.BookingOutput)

    @extend_schema(
        operation_id="calendar_bookings_create",
        request=s.BookingInput,
        responses={201: s.BookingOutput, **INVALID, **NOT_FOUND, **TAKEN},
    )
    def post(self, request: Request) -> Response:
        data = _valid(s.BookingInput, request.data)
        service = _service(request, data.pop("service"))
        booking = services.booking_create(service=service, **data)
        return Response(s.BookingOutput(_booking(request, booking.pk)).data, status=status.HTTP_201_CREATED)


class BookingDetailView(APIView):
    permission_classes = [IsMember]

    @extend_schema(operation_id="calendar_bookings_retrieve", responses={200: s.BookingOutput, **NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.BookingOutput(_booking(request, pk)).data)


class BookingCancelView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="calendar_bookings_cancel", request=None, responses={200: s.BookingOutput, **NOT_FOUND}
    )
    def post(self, request: Request, pk: int) -> Response:
        services.booking_cancel(booking=_booking(request, pk))
        return Response(s.BookingOutput(_booking(request, pk)).data)


class BookingRescheduleView(APIView):
    permission_classes = [IsMember]

    @extend_schema(
        operation_id="calendar_bookings_reschedule",
        request=s.RescheduleInput,
        responses={200: s.BookingOutput, **INVALID, **NOT_FOUND, **TAKEN},
    )
    def post(self, request: Request, pk: int) -> Response:
        data = _valid(s.RescheduleInput, request.data)
        moved = services.booking_reschedule(booking=_booking(request, pk), **data)
        return Response(s.BookingOutput(_booking(request, moved.pk)).data)
