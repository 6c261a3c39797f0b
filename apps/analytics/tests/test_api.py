"""/api/analytics/: supervisors read their own workspace's figures, as JSON and as CSV; another
workspace's rows and channels never show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.models import Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
RANGE = "start=2026-01-10&end=2026-01-11"
FIGURES = ["messages/", "conversations/", "response-times/", "delivery/", "llm/", "alerts/", "opt-outs/"]


def _messages(channel, count: int, at: datetime) -> None:
    conversation = ConversationFactory.create(channel=channel)
    rows = [MessageFactory.create(conversation=conversation) for _ in range(count)]
    Message.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=at)


@pytest.fixture
def supervisor(member_client, workspace):
    workspace.timezone = "America/Mexico_City"  # UTC-6
    workspace.save()
    client, _ = member_client(Role.SUPERVISOR)
    return client


def test_a_supervisor_reads_messages_by_local_day_of_their_workspace_only(supervisor, workspace):
    channel = ChannelFactory.create(workspace=workspace)
    _messages(channel, 2, datetime(2026, 1, 11, 5, 0, tzinfo=UTC))  # 23:00 on the 10th in Mexico City
    _messages(
        ChannelFactory.create(workspace=WorkspaceFactory.create()), 5, datetime(2026, 1, 10, 12, tzinfo=UTC)
    )

    response = supervisor.get(f"/api/analytics/messages/?{RANGE}")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == {
        "start": "2026-01-10",
        "end": "2026-01-11",
        "timezone": "America/Mexico_City",
        "channel": None,
    }
    assert body["by_day"] == [
        {"day": "2026-01-10", "inbound": 2, "outbound": 0},
        {"day": "2026-01-11", "inbound": 0, "outbound": 0},
    ]
    assert body["by_hour"][23] == {"hour": 23, "inbound": 2, "outbound": 0}
    assert body["inbound"] == 2


@pytest.mark.parametrize("path", ["", *FIGURES])
def test_every_figure_answers_for_a_supervisor_and_refuses_an_agent(member_client, supervisor, path):
    agent, _ = member_client(Role.AGENT)

    assert supervisor.get(f"/api/analytics/{path}?{RANGE}").status_code == 200
    assert agent.get(f"/api/analytics/{path}?{RANGE}").status_code == 403


def test_another_workspaces_channel_is_refused_and_its_figures_never_show(supervisor, workspace):
    theirs = ChannelFactory.create(workspace=WorkspaceFactory.create())
    _messages(theirs, 3, datetime(2026, 1, 10, 12, tzinfo=UTC))

    for path in FIGURES:
        response = supervisor.get(f"/api/analytics/{path}?{RANGE}&channel={theirs.pk}")
        assert response.status_code == 400, (path, response.content)
        assert "channel" in str(response.json()["error"]["details"])
    csv = supervisor.get(f"/api/analytics/export/messages_by_day?{RANGE}&channel={theirs.pk}")
    assert csv.status_code == 400
    assert supervisor.get(f"/api/analytics/delivery/?{RANGE}").json()["outbound"] == 0


def test_the_index_names_the_channels_tables_and_what_is_planned(supervisor, workspace):
    mine = ChannelFactory.create(workspace=workspace, name="Shop")
    ChannelFactory.create(workspace=WorkspaceFactory.create(), name="Theirs")

    body = supervisor.get(f"/api/analytics/?{RANGE}&channel={mine.pk}").json()

    assert body["channels"] == [{"id": mine.pk, "name": "Shop"}]
    assert body["period"]["channel"] == mine.pk
    assert "messages_by_day" in body["tables"] and "llm_usage" in body["tables"]
    assert body["planned"] == [] and "campaign_funnels" in body["tables"]


def test_campaign_funnels_list_the_campaigns_started_in_the_period_with_their_figures(supervisor, workspace):
    from apps.campaigns.models import Campaign, Recipient
    from apps.conversations.tests.factories import ContactFactory, outbound_message

    channel = ChannelFactory.create(workspace=workspace)
    inside = datetime(2026, 1, 11, 3, 0, tzinfo=UTC)  # the 10th, 21:00 in Mexico City
    campaign = Campaign.objects.create(
        workspace=workspace,
        name="Rebajas",
        channel=channel,
        status="running",
        started_at=inside,
        scheduled_at=inside,
    )
    Campaign.objects.create(
        workspace=workspace,
        name="Later",
        status="running",
        started_at=datetime(2026, 2, 1, tzinfo=UTC),
        scheduled_at=inside,
    )
    Campaign.objects.create(
        workspace=WorkspaceFactory.create(),
        name="Theirs",
        status="running",
        started_at=inside,
        scheduled_at=inside,
    )
    for status in ("read", "failed"):
        contact = ContactFactory.create(workspace=workspace)
        message = outbound_message(
            conversation=ConversationFactory.create(channel=channel, contact=contact),
            status=status,
            send_state="sent",
        )
        Recipient.objects.create(
            campaign=campaign,
            contact=contact,
            channel=channel,
            state="queued",
            message=message,
            queued_at=inside,
        )
    Recipient.objects.create(
        campaign=campaign,
        contact=ContactFactory.create(workspace=workspace),
        channel=channel,
        state="skipped",
        skip_reason="opted_out",
    )

    rows = supervisor.get(f"/api/analytics/campaigns/?{RANGE}").json()["rows"]
    csv_text = supervisor.get(f"/api/analytics/export/campaign_funnels?{RANGE}").content.decode()

    assert [(r["name"], r["total"], r["skipped"], r["sent"], r["read"], r["failed"]) for r in rows] == [
        ("Rebajas", 3, 1, 1, 1, 1)
    ]
    assert csv_text.splitlines()[1].startswith(f"{campaign.pk},Rebajas,running,")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("start=2026-01-11&end=2026-01-10", "end"),
        ("start=2025-01-01&end=2026-01-02", "end"),
        ("start=1999-12-31", "start"),
        ("end=2101-01-01", "end"),
        ("start=yesterday", "start"),
        ("channel=0", "channel"),
    ],
)
def test_a_range_that_cannot_be_read_is_refused_with_400(supervisor, query, field):
    response = supervisor.get(f"/api/analytics/messages/?{query}")

    assert response.status_code == 400, response.content
    assert field in str(response.json()["error"]["details"])


def test_each_table_exports_as_csv_with_a_header(supervisor, workspace):
    channel = ChannelFactory.create(workspace=workspace)
    _messages(channel, 2, datetime(2026, 1, 11, 5, 0, tzinfo=UTC))

    response = supervisor.get(f"/api/analytics/export/messages_by_day?{RANGE}")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="messages_by_day_20260110-20260111.csv"'
    assert response.content.decode().splitlines() == [
        "day,inbound,outbound",
        "2026-01-10,2,0",
        "2026-01-11,0,0",
    ]
    hours = supervisor.get(f"/api/analytics/export/messages_by_hour?{RANGE}").content.decode().splitlines()
    assert hours[0] == "hour,inbound,outbound" and hours[24] == "23,2,0" and len(hours) == 25
    for table in supervisor.get("/api/analytics/").json()["tables"]:
        assert supervisor.get(f"/api/analytics/export/{table}?{RANGE}").status_code == 200, table
    missing = supervisor.get(f"/api/analytics/export/nope?{RANGE}")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
