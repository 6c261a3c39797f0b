from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.accounts import selectors, services
from apps.accounts.api import serializers as s
from apps.accounts.models import Membership
from apps.accounts.permissions import MembersReadAdminsWrite
from chatbot.openapi import errors, paginated
from chatbot.pagination import Pagination

LAST_OWNER = errors({409: "A workspace keeps at least one owner."})


def _client_ip(request: Request) -> str | None:
    return BaseThrottle().get_ident(request) or None  # honours REST_FRAMEWORK["NUM_PROXIES"]


def _acting(request: Request) -> Membership:
    membership = selectors.request_membership(request)
    assert membership is not None  # noqa: S101 - guaranteed by the permission class
    return membership


class LoginView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.LoginInput,
        responses={
            200: s.TokenPairOutput,
            **errors({401: "Wrong username or password.", 429: "Too many failed logins, or requests."}),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = s.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.login(
            identifier=data.validated_data["username"],
            password=data.validated_data["password"],
            ip=_client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(s.TokenPairOutput(pair).data)


class RefreshView(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=s.RefreshInput,
        responses={
            200: s.TokenPairOutput,
            **errors({401: "The refresh token is not valid, used or expired."}),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        data = s.RefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.tokens_refresh(raw_refresh=data.validated_data["refresh"])
        return Response(s.TokenPairOutput(pair).data)


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=s.LogoutInput, responses={204: None})
    def post(self, request: Request) -> Response:
        data = s.LogoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.logout(session_id=request.auth["sid"], raw_refresh=data.validated_data.get("refresh"))  # type: ignore[index]
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: s.MeOutput})
    def get(self, request: Request) -> Response:
        membership = selectors.request_membership(request)
        body = {
            "user": request.user,
            "workspace": membership.workspace if membership else None,
            "role": membership.role if membership else None,
            "memberships": selectors.user_memberships(user_id=int(request.user.pk or 0)),
        }
        return Response(s.MeOutput(body).data)


class WorkspaceView(APIView):
    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(responses={200: s.WorkspaceOutput})
    def get(self, request: Request) -> Response:
        return Response(s.WorkspaceOutput(selectors.request_workspace(request)).data)

    @extend_schema(request=s.WorkspaceInput, responses={200: s.WorkspaceOutput})
    def patch(self, request: Request) -> Response:
        data = s.WorkspaceInput(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = services.workspace_update(
            workspace=selectors.request_workspace(request), **data.validated_data
        )
        return Response(s.WorkspaceOutput(workspace).data)


class MemberListView(APIView):
    permission_classes = [MembersReadAdminsWrite]

    @extend_schema(operation_id="accounts_members_list", responses={200: paginated(s.MemberOutput)})
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(
            selectors.workspace_members(workspace=selectors.request_workspace(request)), request
        )
        return paginator.get_paginated_response(s.MemberOutput(page, many=True).data)

    @extend_schema(
        request=s.MemberCreateInput,
        responses={
            201: s.MemberOutput,
            **errors({409: "The username or e-mail address is taken in this workspace."}),
        },
    )
    def post(self, request: Request) -> Response:
        data = s.MemberCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_create(acting=_acting(request), **data.validated_data)
        return Response(s.MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailView(APIView):
    permission_classes = [MembersReadAdminsWrite]

    def _get(self, request: Request, pk: int) -> Membership:
        return selectors.member_get(workspace=selectors.request_workspace(request), pk=pk)

    @extend_schema(responses={200: s.MemberOutput})
    def get(self, request: Request, pk: int) -> Response:
        return Response(s.MemberOutput(self._get(request, pk)).data)

    @extend_schema(request=s.MemberUpdateInput, responses={200: s.MemberOutput, **LAST_OWNER})
    def patch(self, request: Request, pk: int) -> Response:
        data = s.MemberUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.member_update_role(
            acting=_acting(request), membership=self._get(request, pk), role=data.validated_data["role"]
        )
        return Response(s.MemberOutput(membership).data)

    @extend_schema(responses={204: None, **LAST_OWNER})
    def delete(self, request: Request, pk: int) -> Response:
        services.member_remove(acting=_acting(request), membership=self._get(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)
