"""Every dashboard and sandbox page, opened by anonymous and by each role, against tests/role_matrix.py
PAGES; and every page that names an object, opened by a member of another workspace (404, nothing
changed, nothing of the other workspace shown)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, resolve

from apps.accounts.models import Membership, Role, Workspace
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.alerts.models import Alert, AlertRule
from apps.alerts.tests.factories import AlertFactory, AlertRuleFactory
from apps.assistant.models import KnowledgeEntry
from apps.calendar.models import Booking, Connection
from apps.calendar.tests.factories import ConnectionFactory, ServiceFactory
from apps.campaigns.tests.factories import CampaignFactory
from apps.conversations.models import CannedReply, Conversation, InternalNote, Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory, outbound_message
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory
from tests.role_matrix import ALLOWED, ANONYMOUS, LOGIN, PAGES, PUBLIC, ROLES, page_expected

OBJECT_PAGES = [page for page in PAGES if "{id}" in page]
SECRET_NAME = "Zebediah Quist"  # a customer of the other workspace, who must never be shown

BODIES: dict[str, Any] = {
    "POST /conversations/{id}/reply/": {"body": "Hello"},
    "POST /business/": {"section": "identity", "name": "Shop"},
    "POST /business/providers/": {"fallback_order": "offline"},
    "POST /business/assistant/": {"temperature": "0.5"},
    "POST /business/knowledge/": {"kind": "faq", "title": "Hours?", "content": "9 to 5"},
    "POST /business/knowledge/import/": lambda: {
        "file": SimpleUploadedFile("faq.csv", b"question,answer\nOpen?,Yes\n", content_type="text/csv")
    },
    "POST /business/knowledge/{id}/": {"kind": "faq", "title": "Hours, please?", "content": "9 to 5"},
    "POST /sandbox/send": {},
    "POST /settings/members/": {"username": "newcomer", "password": "a-long-pass-phrase-42", "role": "agent"},
    "POST /settings/members/{id}/role/": {"role": "viewer"},
    "POST /inbox/replies/": {"title": "Hours", "body": "We open at 9, {{name}}."},
    "POST /conversations/{id}/assign/": {"assignee": "me"},
    "POST /conversations/{id}/note/": {"body": "Call back tomorrow"},
    "POST /conversations/{id}/attach/": {"kind": "image", "link": "https://example.com/a.jpg"},
    "POST /whatsapp-web/add/": {"name": "Shop phone"},
    "POST /whatsapp-web/{id}/pair/": {"phone": "+34 600 123 456"},
    "POST /alerts/rules/new/": {
        "name": "Angry",
        "kind": "sentiment",
        "severity": "high",
        "threshold": "-0.3",
        "classifier": "lexicon",
        "minutes": "0",
        "rate": "0",
        "min_count": "0",
        "cooldown_minutes": "30",
    },
}
BODIES["POST /alerts/rules/{id}/"] = {**BODIES["POST /alerts/rules/new/"], "name": "Changed"}


def _url_names(prefix: str, patterns: list[Any]) -> set[str]:
    return {f"{prefix}:{p.name}" for p in patterns if isinstance(p, URLPattern) and p.name}


def _page_url_names() -> set[str]:
    from apps.dashboard import urls as dashboard_urls
    from apps.sandbox import urls as sandbox_urls

    return _url_names("dashboard", dashboard_urls.urlpatterns) | _url_names(
        "sandbox", sandbox_urls.urlpatterns
    )


def _object_id(page: str, workspace: Workspace) -> int:
    """An object of `workspace` the page acts on (a fresh one, since some cells change it)."""
    path = page.split(" ", 1)[1]
    if path.startswith("/conversations/"):
        conversation = ConversationFactory.create(channel__workspace=workspace, contact__name=SECRET_NAME)
        MessageFactory.create(conversation=conversation, body="my secret order")
        return conversation.pk
    if path.startswith("/inbox/replies/"):
        return CannedReply.objects.create(workspace=workspace, title=SECRET_NAME, body="Hello").pk
    if path.startswith("/queue/"):
        conversation = ConversationFactory.create(channel__workspace=workspace, contact__name=SECRET_NAME)
        return outbound_message(conversation=conversation, send_state=Message.SendState.FAILED).pk
    if path.startswith("/alerts/rules/"):
        return AlertRuleFactory.create(workspace=workspace, name=SECRET_NAME).pk
    if path.startswith("/alerts/"):
        conversation = ConversationFactory.create(channel__workspace=workspace, contact__name=SECRET_NAME)
        return AlertFactory.create(rule__workspace=workspace, conversation=conversation).pk
    if path.startswith("/campaigns/"):
        return CampaignFactory.create(workspace=workspace, name=SECRET_NAME).pk
    if path.startswith("/calendar/connections/"):
        return ConnectionFactory.create(workspace=workspace, account_email="zebediah@example.com").pk
    if path.startswith("/calendar/services/"):
        return ServiceFactory.create(workspace=workspace, name=SECRET_NAME).pk
    if path.startswith("/calendar/bookings/"):
        service = ServiceFactory.create(workspace=workspace)
        start = datetime.datetime(2030, 3, 4, 10, tzinfo=datetime.UTC)
        return Booking.objects.create(
            workspace=workspace,
            service=service,
            start=start,
            end=start + datetime.timedelta(minutes=30),
            status=Booking.Status.PENDING,
            calendar_key=service.calendar_key,
            idempotency_key="page-matrix",
            customer_name=SECRET_NAME,
        ).pk
    if path.startswith("/settings/numbers/"):
        return ChannelFactory.create(workspace=workspace, name=SECRET_NAME).pk
    if path.startswith("/settings/members/"):
        return MembershipFactory.create(workspace=workspace, role=Role.AGENT, user__first_name=SECRET_NAME).pk

    if path.startswith("/whatsapp-web/"):
        return Channel.objects.create(workspace=workspace, kind=Channel.Kind.WEB, name=SECRET_NAME).pk
    if path.startswith("/business/knowledge/"):
        return KnowledgeEntry.objects.create(workspace_id=workspace.pk, title=SECRET_NAME, content="Yes").pk
    raise AssertionError(f"no object for {page}: teach _object_id about it")


def _client(role: str, workspace: Workspace) -> Client:
    client = Client()
    if role != ANONYMOUS:
        client.force_login(MembershipFactory.create(workspace=workspace, role=role).user)
    return client


def _open(client: Client, page: str, object_id: int | None) -> Any:
    method, path = page.split(" ", 1)
    if object_id is not None:
        path = path.replace("{id}", str(object_id))
    if method == "GET":
        return client.get(path)
    body = BODIES.get(page, {})
    return client.post(path, body() if callable(body) else body)


def _sent_to_login(response: Any) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code == 302 and response["Location"].startswith("/login/")


def test_every_page_has_a_row_and_every_row_a_page():
    covered = set()
    for page in PAGES:
        match = resolve(page.split(" ", 1)[1].replace("{id}", "1"))
        covered.add(f"{match.namespace}:{match.url_name}")
    assert sorted(_page_url_names() - covered) == [], "add these pages to tests/role_matrix.py PAGES"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", list(PAGES))
def test_page_matrix(page, role, tasks_captured):
    workspace = WorkspaceFactory.create()
    MembershipFactory.create(workspace=workspace, role=Role.OWNER)
    client = _client(role, workspace)
    object_id = _object_id(page, workspace) if "{id}" in page else None

    response = _open(client, page, object_id)

    want = page_expected(page, role)
    if want == LOGIN:
        assert _sent_to_login(response), (response.status_code, response.get("Location"))
    elif want == ALLOWED:
        assert response.status_code not in (401, 403, 500), (response.status_code, response.content[:300])
        if PAGES[page] != PUBLIC:
            assert not _sent_to_login(response), response.get("Location")
    else:
        assert response.status_code == want, (response.status_code, response.content[:300])


@pytest.mark.django_db
@pytest.mark.parametrize("page", OBJECT_PAGES)
def test_another_workspace_gets_404_for_every_object_page(page, tasks_captured):
    mine, theirs = WorkspaceFactory.create(), WorkspaceFactory.create()
    MembershipFactory.create(workspace=mine, role=Role.OWNER)
    client = _client(Role.OWNER, theirs)
    object_id = _object_id(page, mine)
    before = _snapshot(mine)

    response = _open(client, page, object_id)

    assert response.status_code == 404, (response.status_code, response.content[:300])
    assert _snapshot(mine) == before
    assert tasks_captured.ids("outbound.number_send") == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/inbox/",
        "/inbox/list/",
        "/inbox/replies/",
        "/queue/",
        "/queue/list/",
        "/alerts/",
        "/alerts/list/",
        "/alerts/rules/",
        "/business/",
        "/business/knowledge/",
        "/settings/numbers/",
        "/settings/members/",
        "/settings/audit/",
        "/calendar/",
        "/sandbox/",
    ],
)
def test_list_pages_show_nothing_of_another_workspace(url):
    mine, theirs = WorkspaceFactory.create(), WorkspaceFactory.create()
    for page in OBJECT_PAGES:
        _object_id(page, mine)
    ConversationFactory.create(
        channel__workspace=mine, channel__kind=Channel.Kind.SANDBOX, contact__name=SECRET_NAME
    )
    ConversationFactory.create(channel__workspace=theirs, channel__kind=Channel.Kind.SANDBOX)
    client = _client(Role.OWNER, theirs)

    response = client.get(url)

    assert response.status_code == 200
    assert SECRET_NAME.encode() not in response.content


def _snapshot(workspace: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """The rows a page could change, so a refused call is seen to have changed nothing."""
    return {
        "knowledge": list(
            KnowledgeEntry.objects.filter(workspace_id=workspace.pk).values_list("pk", "title", "is_active")
        ),
        "conversations": list(
            Conversation.objects.filter(workspace=workspace).values_list(
                "pk", "status", "assignee_id", "unread_count"
            )
        ),
        "messages": list(Message.objects.filter(workspace=workspace).values_list("pk", "send_state")),
        "alerts": list(Alert.objects.filter(workspace=workspace).values_list("pk", "state")),
        "alert_rules": list(AlertRule.objects.filter(workspace=workspace).values_list("pk", "name", "kind")),
        "calendar_connections": list(
            Connection.objects.filter(workspace=workspace).values_list("pk", "status")
        ),
        "bookings": list(Booking.objects.filter(workspace=workspace).values_list("pk", "status")),
        "notes": list(InternalNote.objects.filter(workspace=workspace).values_list("pk", "body")),
        "canned_replies": list(CannedReply.objects.filter(workspace=workspace).values_list("pk", "title")),
        "channels": list(
            Channel.objects.filter(workspace=workspace).values_list("pk", "verify_token_digest", "health")
        ),
        "members": list(Membership.objects.filter(workspace=workspace).values_list("pk", "role")),
    }
