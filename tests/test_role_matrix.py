"""Every operation of the OpenAPI schema, called by anonymous and by each role, against tests/role_matrix.py;
and every object endpoint, called by a member of another workspace (404, nothing changed)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from apps.accounts import services as account_services
from apps.accounts.models import Membership, Role, Workspace
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, WorkspaceFactory
from apps.alerts.models import Alert, AlertRule
from apps.alerts.tests.factories import AlertFactory, AlertRuleFactory
from apps.assistant.models import KnowledgeEntry
from apps.calendar.models import Booking, Connection, Service
from apps.calendar.tests.factories import ConnectionFactory, ServiceFactory
from apps.campaigns.models import Campaign, ContactImport, Segment, Template
from apps.campaigns.tests.factories import CampaignFactory
from apps.conversations.models import CannedReply, Contact, Conversation, InternalNote, Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory, outbound_message
from apps.whatsapp.models import Channel
from tests.role_matrix import ALLOWED, ANONYMOUS, MATRIX, ROLES, expected

METHODS = ("get", "post", "put", "patch", "delete")


def _schema_operations() -> list[str]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        f"{method.upper()} {path}"
        for path, item in schema["paths"].items()
        for method in item
        if method in METHODS
    )


OPERATIONS = _schema_operations()
OBJECT_OPERATIONS = [op for op in OPERATIONS if "{id}" in op]

# Minimal valid bodies; an operation not listed is sent `{}` (a 400 still proves the role check passed).
BODIES: dict[str, Any] = {
    "PATCH /api/accounts/workspace/": {"name": "Renamed"},
    "POST /api/accounts/members/": lambda: {
        "username": f"m{uuid.uuid4().hex[:10]}",
        "email": "",
        "password": "a-long-enough-passphrase",
        "role": "viewer",
    },
    "PATCH /api/accounts/members/{id}/": {"role": "viewer"},
    "PUT /api/business/": {"name": "Shop"},
    "PUT /api/business/providers": {},
    "PUT /api/business/assistant": {"temperature": 0.5},
    "POST /api/business/knowledge/": {"title": "Hours?", "content": "9 to 5"},
    "PATCH /api/business/knowledge/{id}/": {"title": "Hours, please?"},
    "POST /api/contacts/": lambda: {"wa_id": f"34{uuid.uuid4().int % 10**9:09d}"},
    "PATCH /api/contacts/{id}/": {"name": "Ana"},
    "POST /api/conversations/{id}/reply": {"body": "Hello"},
    "POST /api/conversations/{id}/assign": {"assignee": None},
    "POST /api/conversations/{id}/notes/": {"body": "Call back"},
    "POST /api/conversations/{id}/attachment": {"kind": "image", "link": "https://example.com/a.jpg"},
    "POST /api/canned-replies/": lambda: {"title": uuid.uuid4().hex[:10], "body": "Hola {{name}}"},
    "POST /api/whatsapp/channels/": lambda: {"kind": "cloud", "phone_number_id": uuid.uuid4().hex[:12]},
    "PATCH /api/whatsapp/channels/{id}/": {"name": "Main"},
    "PATCH /api/segments/{id}/": {"name": "Renamed"},
    "POST /api/campaigns/": {"name": "Rebajas"},
    "PATCH /api/campaigns/{id}/": {"name": "Renamed"},
    "POST /api/alerts/rules/": {"name": "Refunds", "kind": "keyword", "keywords": ["reembolso"]},
    "PATCH /api/alerts/rules/{id}/": {"severity": "low"},
    "POST /api/alerts/{id}/assign": {"assignee": None},
    "PATCH /api/calendar/services/{id}/": {"name": "Corte largo"},
    "POST /api/calendar/services/": {"name": "Corte", "duration_minutes": 30},
    "POST /api/calendar/bookings/{id}/reschedule": lambda: {
        "start": "2030-03-04T11:00:00Z",
        "idempotency_key": uuid.uuid4().hex,
    },
}


def _object_id(operation: str, workspace: Workspace) -> int:
    """An object of `workspace` the operation acts on (a fresh one, since some cells delete it)."""
    path = operation.split(" ", 1)[1]
    if path.startswith("/api/calendar/connections/"):
        return ConnectionFactory.create(workspace=workspace).pk
    if path.startswith("/api/calendar/services/"):
        return ServiceFactory.create(workspace=workspace).pk
    if path.startswith("/api/calendar/bookings/"):
        return _booking(workspace).pk
    if path.startswith("/api/alerts/rules/"):
        return AlertRuleFactory.create(workspace=workspace).pk
    if path.startswith("/api/alerts/"):
        return AlertFactory.create(rule__workspace=workspace).pk
    if path.startswith("/api/accounts/members/"):
        return MembershipFactory.create(workspace=workspace, role=Role.VIEWER).pk
    if path.startswith("/api/business/knowledge/"):
        return KnowledgeEntry.objects.create(workspace_id=workspace.pk, title="Open?", content="Yes").pk
    if path.startswith("/api/contacts/imports/"):
        return ContactImport.objects.create(workspace=workspace, data=b"", region="ES").pk
    if path.startswith("/api/contacts/"):
        return ConversationFactory.create(channel__workspace=workspace).contact_id
    if path.startswith("/api/templates/"):
        return Template.objects.create(
            workspace=workspace,
            waba_id="1",
            name=f"t{uuid.uuid4().hex[:8]}",
            language="es",
            category="UTILITY",
        ).pk
    if path.startswith("/api/campaigns/"):
        return CampaignFactory.create(workspace=workspace).pk
    if path.startswith("/api/segments/"):
        return Segment.objects.create(workspace=workspace, name=uuid.uuid4().hex[:8], filters={}).pk
    if path.startswith("/api/conversations/"):
        return ConversationFactory.create(channel__workspace=workspace).pk
    if path.startswith("/api/canned-replies/"):
        return CannedReply.objects.create(workspace=workspace, title=uuid.uuid4().hex[:10], body="Hola").pk
    if path.startswith("/api/messages/"):
        return MessageFactory.create(conversation__channel__workspace=workspace).pk
    if path.startswith("/api/queue/"):
        conversation = ConversationFactory.create(channel__workspace=workspace)
        return outbound_message(conversation=conversation).pk
    if path.startswith("/api/whatsapp/channels/"):
        return ConversationFactory.create(channel__workspace=workspace).channel_id
    raise AssertionError(f"no object for {operation}: teach _object_id about it")


def _booking(workspace: Workspace) -> Booking:
    service = ServiceFactory.create(workspace=workspace)
    start = datetime.datetime(2030, 3, 4, 10, tzinfo=datetime.UTC)
    return Booking.objects.create(
        workspace=workspace,
        service=service,
        start=start,
        end=start + datetime.timedelta(minutes=30),
        status=Booking.Status.PENDING,
        calendar_key=service.calendar_key,
        idempotency_key=uuid.uuid4().hex,
    )


def _client(role: str, workspace: Workspace) -> tuple[APIClient, Membership | None]:
    client = APIClient()
    if role == ANONYMOUS:
        return client, None
    membership = MembershipFactory.create(workspace=workspace, role=role)
    pair = account_services.login(identifier=membership.user.username, password=PASSWORD, ip=None)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
    return client, membership


def _call(client: APIClient, operation: str, object_id: int | None) -> Any:
    method, path = operation.split(" ", 1)
    if object_id is not None:
        path = path.replace("{id}", str(object_id))
    path = path.replace("{table}", "messages_by_day")
    body = BODIES.get(operation, {})
    body = body() if callable(body) else body
    if method in ("GET", "DELETE"):
        return getattr(client, method.lower())(path)
    return getattr(client, method.lower())(path, body, format="json")


def test_every_schema_operation_has_a_row_and_every_row_an_operation():
    assert sorted(set(OPERATIONS) - set(MATRIX)) == [], "add these operations to tests/role_matrix.py"
    assert sorted(set(MATRIX) - set(OPERATIONS)) == [], "these rows name no operation any more"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_role_matrix(operation, role):
    workspace = WorkspaceFactory.create()
    MembershipFactory.create(workspace=workspace, role=Role.OWNER)  # the last owner is never the target
    client, _ = _client(role, workspace)
    object_id = _object_id(operation, workspace) if "{id}" in operation else None

    response = _call(client, operation, object_id)

    want = expected(operation, role)
    if want == ALLOWED:
        assert response.status_code not in (401, 403, 500), (response.status_code, response.content[:300])
    else:
        assert response.status_code == want, (response.status_code, response.content[:300])


@pytest.mark.django_db
@pytest.mark.parametrize("operation", OBJECT_OPERATIONS)
def test_another_workspace_gets_404_for_every_object_endpoint(operation):
    mine, theirs = WorkspaceFactory.create(), WorkspaceFactory.create()
    MembershipFactory.create(workspace=mine, role=Role.OWNER)
    client, _ = _client(Role.OWNER, theirs)
    object_id = _object_id(operation, mine)
    before = _snapshot(mine)

    response = _call(client, operation, object_id)

    assert response.status_code == 404, (response.status_code, response.content[:300])
    assert _snapshot(mine) == before


def _snapshot(workspace: Workspace) -> dict[str, list[tuple[Any, ...]]]:
    """The rows an operation could change, so a refused call is seen to have changed nothing."""
    return {
        "members": list(Membership.objects.filter(workspace=workspace).values_list("pk", "role")),
        "knowledge": list(
            KnowledgeEntry.objects.filter(workspace_id=workspace.pk).values_list("pk", "title", "is_active")
        ),
        "contacts": list(Contact.objects.filter(workspace=workspace).values_list("pk", "name")),
        "messages": list(Message.objects.filter(workspace=workspace).values_list("pk", "send_state")),
        "channels": list(Channel.objects.filter(workspace=workspace).values_list("pk", "name", "is_active")),
        "templates": list(Template.objects.filter(workspace=workspace).values_list("pk", "status")),
        "segments": list(Segment.objects.filter(workspace=workspace).values_list("pk", "name")),
        "campaigns": list(Campaign.objects.filter(workspace=workspace).values_list("pk", "name", "status")),
        "alert_rules": list(
            AlertRule.objects.filter(workspace=workspace).values_list("pk", "severity", "is_active")
        ),
        "calendar_connections": list(
            Connection.objects.filter(workspace=workspace).values_list("pk", "status", "token")
        ),
        "calendar_services": list(
            Service.objects.filter(workspace=workspace).values_list("pk", "name", "is_active")
        ),
        "bookings": list(Booking.objects.filter(workspace=workspace).values_list("pk", "status", "start")),
        "alerts": list(Alert.objects.filter(workspace=workspace).values_list("pk", "state", "assignee_id")),
        "conversations": list(
            Conversation.objects.filter(workspace=workspace).values_list("pk", "assignee_id")
        ),
        "notes": list(InternalNote.objects.filter(workspace=workspace).values_list("pk", "body")),
        "canned_replies": list(CannedReply.objects.filter(workspace=workspace).values_list("pk", "title")),
    }
