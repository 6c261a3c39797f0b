"""The sandbox pages: play a customer of your own business (doors only: parse, call, render)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import Membership, Role
from apps.accounts.selectors import request_membership
from apps.assistant.models import BusinessProfile
from apps.conversations.models import Message
from apps.sandbox import selectors, services
from apps.whatsapp.models import Channel
from chatbot.exceptions import DomainError

P = ParamSpec("P")


def member_required(
    view: Callable[Concatenate[HttpRequest, Membership, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """A logged-in member of a workspace who may write (viewers only read); the view receives the
    membership it acts through."""

    @wraps(view)
    def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            if request.path.endswith(".json") or request.method == "POST":
                return _error(401, "not_authenticated", "Log in first.")
            return redirect_to_login(request.get_full_path())  # the dashboard's /login/ (LOGIN_URL)
        membership = request_membership(request)
        if membership is None or membership.role == Role.VIEWER:
            return _error(403, "forbidden", "The sandbox needs a workspace role above viewer.")
        return view(request, membership, *args, **kwargs)

    return wrapper


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _channel(membership: Membership) -> Channel | None:
    return selectors.sandbox_channel(workspace=membership.workspace)


@require_GET
@member_required
def sandbox_page(request: HttpRequest, membership: Membership) -> HttpResponse:
    channel = _channel(membership)
    customers = selectors.sandbox_customers(channel=channel)[:50] if channel else []
    profile = BusinessProfile.objects.filter(workspace_id=channel.workspace_id).first() if channel else None
    return render(
        request,
        "sandbox/index.html",
        {
            "channel": channel,
            "business_name": (profile.name if profile else "") or (channel.name if channel else ""),
            "customers": [{"name": c.display_name, "number": c.wa_id} for c in customers],
        },
    )


@require_POST
@member_required
def sandbox_send(request: HttpRequest, membership: Membership) -> HttpResponse:
    channel = _channel(membership)
    if channel is None:
        return _error(409, "no_sandbox_channel", "This workspace has no sandbox channel: run seed_demo.")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return _error(400, "invalid", "The body must be JSON.")
    if not isinstance(data, dict):
        return _error(400, "invalid", "The body must be a JSON object.")
    try:
        wamid = services.sandbox_message_send(
            channel=channel,
            number=str(data.get("number", "")),
            name=str(data.get("name", "")),
            text=str(data.get("text", "")),
        )
    except DomainError as exc:
        return _error(exc.status_code, exc.code, exc.message)
    return JsonResponse({"wamid": wamid}, status=201)


@require_GET
@member_required
def sandbox_messages(request: HttpRequest, membership: Membership) -> HttpResponse:
    channel = _channel(membership)
    if channel is None:
        return _error(409, "no_sandbox_channel", "This workspace has no sandbox channel: run seed_demo.")
    try:
        wa_id = services.sandbox_number_clean(request.GET.get("number", ""))
    except DomainError as exc:
        return _error(exc.status_code, exc.code, exc.message)
    thread = selectors.sandbox_thread(channel=channel, wa_id=wa_id)
    return JsonResponse({"messages": [_message_out(m) for m in thread]})


def _message_out(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "direction": message.direction,
        "author": message.author,
        "type": message.type,
        "body": message.body,
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }
