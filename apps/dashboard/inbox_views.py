"""The staff inbox: the list, the open conversation beside it and the customer on the right, each pane a
server-rendered fragment the live feed re-fetches. Doors only: selectors read, services write."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts import selectors as account_selectors
from apps.accounts.models import ROLE_RANK, Membership, Role
from apps.campaigns import selectors as campaign_selectors
from apps.campaigns.models import Template
from apps.conversations import selectors
from apps.conversations.models import Conversation, InternalNote, Message
from apps.conversations.services import actions, desk
from apps.dashboard import forms
from apps.dashboard.access import member_page, roles
from apps.dashboard.views import _page, _refused
from apps.whatsapp import selectors as channel_selectors
from chatbot.exceptions import DomainError, ValidationFailed

PAGE_SIZE = 100
THREAD_SIZE = 300
CANNED_SHOWN = 20
ACTIONS = {
    "takeover": actions.conversation_takeover,
    "handback": actions.conversation_handback,
    "close": actions.conversation_close,
}


def _filters(request: HttpRequest, membership: Membership) -> tuple[forms.InboxFilterForm, dict[str, Any]]:
    form = forms.InboxFilterForm(request.GET, channels=_channels(membership))
    return form, (form.cleaned_data if form.is_valid() else {})


def _channels(membership: Membership) -> list[tuple[int, str]]:
    found = channel_selectors.channel_list(workspace=membership.workspace)
    return [(c.pk, c.name or c.display_phone_number or str(c.pk)) for c in found]


def _rows(request: HttpRequest, membership: Membership, filters: dict[str, Any]) -> QuerySet[Conversation]:
    found = selectors.inbox_list(
        workspace=membership.workspace,
        user_id=int(request.user.pk or 0),
        view=filters.get("view") or selectors.InboxView.LIVE,
        channel=filters.get("channel"),
        tag=filters.get("tag", ""),
        q=filters.get("q", ""),
    )
    return found[:PAGE_SIZE]


def _list_context(request: HttpRequest, membership: Membership, current: int | None = None) -> dict[str, Any]:
    form, filters = _filters(request, membership)
    query = request.GET.copy()
    query.pop("open", None)
    return {
        "form": form,
        "conversations": _rows(request, membership, filters),
        "query": query.urlencode(),
        "current_id": current,
    }


def _members(membership: Membership) -> list[tuple[int, str]]:
    """Whom a conversation may be given to: members who may answer it."""
    found = account_selectors.workspace_members(workspace=membership.workspace).select_related("user")
    return [
        (m.user_id, m.user.get_username())
        for m in found
        if ROLE_RANK.get(m.role, -1) >= ROLE_RANK[Role.AGENT]
    ]


@require_GET
@member_page()
def inbox(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership, "dashboard/inbox.html", **_list_context(request, membership))


@require_GET
@member_page()
def inbox_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    current = request.GET.get("open", "")
    context = _list_context(request, membership, int(current) if current.isdigit() else None)
    return render(request, "dashboard/_inbox_list.html", context)


@require_GET
@member_page()
def inbox_waiting(request: HttpRequest, membership: Membership) -> HttpResponse:
    count = selectors.waiting_count(workspace=membership.workspace)
    return render(request, "dashboard/_waiting.html", {"waiting": count})


# --- one conversation -----------------------------------------------------------------------
def _conversation(membership: Membership, pk: int) -> Conversation:
    return selectors.conversation_get(workspace=membership.workspace, pk=pk)


def _thread(conversation: Conversation) -> list[Message | InternalNote]:
    """The newest messages, oldest first, with the team's notes among them by time."""
    newest = (
        selectors.conversation_messages(conversation=conversation)
        .select_related("author_user")
        .order_by("-created_at", "-pk")
    )
    shown: list[Message | InternalNote] = list(reversed(newest[:THREAD_SIZE]))
    since = shown[0].created_at if len(shown) == THREAD_SIZE else None
    notes = selectors.conversation_notes(conversation=conversation)
    if since is not None:
        notes = notes.filter(created_at__gte=since)
    shown.extend(notes)
    return sorted(shown, key=lambda item: item.created_at)


def _head_context(membership: Membership, conversation: Conversation) -> dict[str, Any]:
    return {"conversation": conversation, "members": _members(membership), **roles(membership)}


@require_GET
@member_page()
def conversation_page(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    if conversation.unread_count and membership.has_role(Role.AGENT):
        # Opening the thread is reading it (a viewer's look sends no read receipt to the customer).
        actions.conversation_mark_read(conversation=conversation)
        conversation.unread_count = 0
    return _page(
        request,
        membership,
        "dashboard/inbox.html",
        **_list_context(request, membership, conversation.pk),
        **_head_context(membership, conversation),
        thread=_thread(conversation),
        reply_form=forms.ReplyForm(),
        window_open=selectors.window_open(conversation=conversation),
        templates=campaign_selectors.template_list(
            workspace=membership.workspace, status=Template.Status.APPROVED
        ).filter(waba_id=conversation.channel.waba_id),
        campaign=campaign_selectors.conversation_campaign(conversation=conversation),
        history=selectors.contact_history(conversation=conversation),
        attachment_kinds=forms.ATTACHMENT_KINDS,
        upload_types=",".join(desk.UPLOAD_KINDS),
    )


@require_GET
@member_page()
def conversation_thread(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    return render(
        request,
        "dashboard/_thread.html",
        {"conversation": conversation, "thread": _thread(conversation), **roles(membership)},
    )


@require_GET
@member_page()
def conversation_head(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    context = {**_head_context(membership, conversation), "membership": membership}
    return render(request, "dashboard/_conversation_head.html", context)


def _back(request: HttpRequest, pk: int) -> HttpResponse:
    query = request.GET.urlencode()
    return redirect(f"{reverse('dashboard:conversation', args=[pk])}{'?' + query if query else ''}")


@require_POST
@member_page(write=Role.AGENT)
def conversation_action(request: HttpRequest, membership: Membership, pk: int, action: str) -> HttpResponse:
    conversation = _conversation(membership, pk)
    act = ACTIONS.get(action)
    if act is None:
        return HttpResponse(status=404)
    try:
        act(conversation=conversation, user=request.user)
    except DomainError as exc:
        _refused(request, exc)
    return _back(request, pk)


@require_POST
@member_page(write=Role.AGENT)
def conversation_reply(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    form = forms.ReplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Write a reply first."))
        return _back(request, pk)
    try:
        actions.conversation_reply(
            conversation=conversation, user=request.user, body=form.cleaned_data["body"]
        )
    except DomainError as exc:
        _refused(request, exc)
    return _back(request, pk)


@require_POST
@member_page(write=Role.AGENT)
def conversation_assign(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    form = forms.AssignForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a teammate."))
        return _back(request, pk)
    chosen = form.cleaned_data["assignee"]
    assignee = int(request.user.pk or 0) if chosen == "me" else (int(chosen) if chosen else None)
    try:
        desk.conversation_assign(conversation=conversation, assignee_id=assignee, user=request.user)
    except DomainError as exc:
        _refused(request, exc)
    return _back(request, pk)


@require_POST
@member_page(write=Role.AGENT)
def conversation_note(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    conversation = _conversation(membership, pk)
    try:
        desk.note_add(conversation=conversation, user=request.user, body=request.POST.get("body", ""))
    except DomainError as exc:
        _refused(request, exc)
    return _back(request, pk)


@require_POST
@member_page(write=Role.AGENT)
def conversation_attach(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """A file uploaded from staff's computer, else one WhatsApp fetches from a link."""
    conversation = _conversation(membership, pk)
    upload = request.FILES.get("file")
    caption = request.POST.get("caption", "")
    try:
        if upload is not None:
            if upload.size is None or upload.size > desk.UPLOAD_LIMIT:  # not read into memory at all
                raise ValidationFailed(
                    _("The file is empty or larger than %(mb)d MB.")
                    % {"mb": desk.UPLOAD_LIMIT // (1024 * 1024)}
                )
            desk.conversation_file_send(
                conversation=conversation,
                user=request.user,
                content=upload.read(),
                mime_type=upload.content_type or "",
                filename=upload.name or "",
                caption=caption,
            )
        else:
            desk.conversation_attachment_send(
                conversation=conversation,
                user=request.user,
                kind=request.POST.get("kind", ""),
                link=request.POST.get("link", ""),
                caption=caption,
            )
    except DomainError as exc:
        _refused(request, exc)
    return _back(request, pk)


@require_GET
@member_page(read=Role.AGENT)
def conversation_canned(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """Canned replies matching `q`, their variables filled in for this customer."""
    conversation = _conversation(membership, pk)
    q = request.GET.get("q", "")[:100]
    found = selectors.canned_reply_list(workspace=membership.workspace, q=q)[:CANNED_SHOWN]
    agent = request.user.get_full_name() or request.user.get_username()  # type: ignore[union-attr]
    shown = [
        (reply, desk.canned_reply_render(reply=reply, contact=conversation.contact, agent_name=agent))
        for reply in found
    ]
    return render(request, "dashboard/_canned.html", {"shown": shown, "q": q})


# --- canned replies -------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
@member_page(read=Role.AGENT, write=Role.AGENT)
def canned_replies(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.CannedReplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            desk.canned_reply_create(workspace_id=membership.workspace.pk, **form.cleaned_data)
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Canned reply saved."))
            return redirect("dashboard:canned-replies")
    q = request.GET.get("q", "")[:100]
    rows = selectors.canned_reply_list(workspace=membership.workspace, q=q)[:PAGE_SIZE]
    return _page(request, membership, "dashboard/canned_replies.html", form=form, rows=rows, q=q)


@require_POST
@member_page(write=Role.SUPERVISOR)
def canned_reply_delete(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    reply = selectors.canned_reply_get(workspace=membership.workspace, pk=pk)
    desk.canned_reply_delete(reply=reply)
    messages.success(request, _("Canned reply deleted."))
    return redirect("dashboard:canned-replies")
