from __future__ import annotations

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.calendar.models import Connection
from apps.calendar.tests.factories import ConnectionFactory


@pytest.fixture
def superuser_client(client, db):
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_the_admin_never_shows_a_token(superuser_client):
    connection = ConnectionFactory(token='{"refresh_token": "1//secret-refresh-token"}')

    listing = superuser_client.get("/admin/calendar/connection/")
    page = superuser_client.get(f"/admin/calendar/connection/{connection.pk}/change/")

    assert listing.status_code == 200 and page.status_code == 200
    assert b"secret-refresh-token" not in listing.content + page.content
    assert connection.account_email.encode() in page.content


def test_the_admin_disconnect_action_forgets_the_token(superuser_client):
    connection = ConnectionFactory(provider="microsoft", token="{}")

    superuser_client.post(
        "/admin/calendar/connection/", {"action": "disconnect", "_selected_action": [connection.pk]}
    )

    connection.refresh_from_db()
    assert connection.status == Connection.Status.DISCONNECTED
    assert connection.token == ""
