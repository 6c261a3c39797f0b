"""The Analytics page: supervisors see their workspace's figures with server-drawn SVG charts (no script,
no inline style, so the CSP holds), in Spanish or English, with CSV links for the range shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from apps.accounts.models import Role
from apps.conversations.models import Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db
RANGE = "start=2026-01-10&end=2026-01-11"


@pytest.fixture
def figures(workspace):
    workspace.timezone = "Europe/Madrid"
    workspace.save()
    channel = ChannelFactory.create(workspace=workspace, name="Tienda")
    conversation = ConversationFactory.create(channel=channel)
    made = [MessageFactory.create(conversation=conversation) for _ in range(3)]
    made.append(MessageFactory.create(conversation=conversation, direction="out", author="bot"))
    Message.objects.filter(pk__in=[m.pk for m in made]).update(
        created_at=datetime(2026, 1, 10, 23, 30, tzinfo=UTC)
    )
    stranger = MessageFactory.create()  # another workspace's, the same night
    Message.objects.filter(pk=stranger.pk).update(created_at=datetime(2026, 1, 10, 23, 30, tzinfo=UTC))
    return channel


def test_a_supervisor_sees_the_figures_and_charts_of_their_workspace(page_client, figures):
    client, _ = page_client(Role.SUPERVISOR)

    response = client.get(f"/analytics/?{RANGE}")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="tile-inbound">3<' in page and 'data-testid="tile-outbound">1<' in page
    assert page.count('data-testid="chart"') == 5
    # 23:30 UTC on the 10th is 00:30 on the 11th in Madrid: the second column of the day chart.
    assert "11 Jan · In: 3" in page and "10 Jan · In" not in page
    assert "style=" not in page and "<script>" not in page
    assert f"/analytics/export/messages_by_day/?{RANGE}".replace("&", "&amp;") in page
    assert 'aria-current="page">Analytics<' in page
    assert "Tienda" in page


def test_the_page_is_in_spanish_with_numbers_the_svg_can_read(page_client, figures):
    client, _ = page_client(Role.SUPERVISOR)

    page = client.get(f"/analytics/?{RANGE}", headers={"accept-language": "es"}).content.decode()

    assert "Analítica" in page and "Mensajes por día" in page and "respondidas solo por el bot" in page
    coordinates = re.findall(r'<rect class="\w+" x="([^"]+)" y="([^"]+)" width="([^"]+)"', page)
    assert coordinates and all("," not in value for row in coordinates for value in row)


def test_a_bad_range_shows_the_reason_and_the_default_period(page_client, figures):
    client, _ = page_client(Role.SUPERVISOR)

    page = client.get("/analytics/?start=2026-01-11&end=2026-01-10").content.decode()

    assert "The range ends before it starts." in page
    assert 'data-testid="tile-inbound">' in page


def test_agents_neither_see_the_link_nor_open_the_page(page_client, figures):
    client, _ = page_client(Role.AGENT)

    assert client.get(f"/analytics/?{RANGE}").status_code == 403
    assert "/analytics/" not in client.get("/alerts/").content.decode()


def test_another_workspaces_channel_is_not_offered_and_is_refused(page_client, figures):
    client, _ = page_client(Role.SUPERVISOR)
    theirs = ChannelFactory.create(name="Ajena")

    page = client.get(f"/analytics/?{RANGE}&channel={theirs.pk}").content.decode()

    assert "Ajena" not in page
    assert (
        'data-testid="tile-inbound">3<' in page
    )  # the range still applies, to every number of this workspace


def test_a_table_downloads_as_csv_for_the_range_and_agents_are_refused(page_client, figures):
    client, _ = page_client(Role.SUPERVISOR)
    agent, _ = page_client(Role.AGENT)

    response = client.get(f"/analytics/export/messages_by_day/?{RANGE}")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="messages_by_day_20260110-20260111.csv"'
    assert response.content.decode().splitlines() == [
        "day,inbound,outbound",
        "2026-01-10,0,0",
        "2026-01-11,3,1",
    ]
    assert client.get(f"/analytics/export/nope/?{RANGE}").status_code == 404
    assert agent.get(f"/analytics/export/messages_by_day/?{RANGE}").status_code == 403
