"""The WhatsApp Web page: each WhatsApp Web number of the workspace with its session's state, live, and
the QR code to link it (administrators only: scanning it gives the platform that phone's WhatsApp)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.utils import extend_schema

from apps.accounts.models import Membership, Role
from apps.dashboard.access import member_page, roles
from apps.dashboard.views import _page
from apps.whatsapp.models import Channel
from apps.whatsapp.services import channel_create
from apps.whatsapp_web.models import WebSession
from apps.whatsapp_web.selectors import qr_svg_data_uri, web_channel_get, web_channels_with_sessions
from apps.whatsapp_web.services import web_pairing_request
from chatbot.exceptions import DomainError

NAME_MAX = 120


def _rows(membership: Membership) -> list[dict[str, Any]]:
    can_link = membership.has_role(Role.ADMIN)
    rows = []
    for channel, session in web_channels_with_sessions(workspace=membership.workspace):
        state = session.state if session else WebSession.State.STARTING
        qr = session.qr if session and session.state == WebSession.State.QR and can_link else ""
        rows.append(
            {
                "channel": channel,
                "state": state,
                "state_label": WebSession.State(state).label,
                "detail": session.detail if session else "",
                "changed_at": session.state_changed_at if session else None,
                "qr_image": qr_svg_data_uri(qr) if qr else "",
                "pairing_code": session.pairing_code if qr and session else "",
            }
        )
    return rows


@extend_schema(exclude=True)
@require_GET
@member_page()
def whatsapp_web(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership, "dashboard/whatsapp_web.html", rows=_rows(membership))


@extend_schema(exclude=True)
@require_GET
@member_page()
def whatsapp_web_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    return render(
        request, "dashboard/_whatsapp_web_list.html", {"rows": _rows(membership), **roles(membership)}
    )


@extend_schema(exclude=True)
@require_POST
@member_page(write=Role.ADMIN)
def whatsapp_web_add(request: HttpRequest, membership: Membership) -> HttpResponse:
    name = request.POST.get("name", "").strip()
    if not name or len(name) > NAME_MAX:
        messages.error(
            request, _("Give the number a name of at most %(max)d characters.") % {"max": NAME_MAX}
        )
    else:
        try:
            channel_create(
                workspace=membership.workspace, kind=Channel.Kind.WEB, name=name, actor_id=membership.user_id
            )
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Added. Its QR code appears here in a few seconds."))
    return HttpResponseRedirect(reverse("dashboard:whatsapp-web"))


@extend_schema(exclude=True)
@require_POST
@member_page(write=Role.ADMIN)
def whatsapp_web_pair(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    channel = web_channel_get(workspace=membership.workspace, pk=pk)
    if channel is None:
        raise Http404
    try:
        web_pairing_request(channel=channel, phone=request.POST.get("phone", "").strip())
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("Asked WhatsApp Web for a pairing code: it appears here in a few seconds.")
        )
    return HttpResponseRedirect(reverse("dashboard:whatsapp-web"))
