"""In a real browser: an owner connects a Google calendar (the stand-in's consent page sends the browser
back), adds a service and sees it on the calendar page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.calendar.models import Connection, Service
from tests.browser.conftest import screenshot
from tests.browser.test_sandbox import demo_owner, log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_owner_connects_google_and_adds_a_service(live_server, google_standin, page):
    username = demo_owner()

    log_in(page, live_server.url, username, "/calendar/")
    page.get_by_test_id("calendar-connect-google").click()
    expect(page.get_by_text("Calendar connected: owner@example.com.")).to_be_visible()
    connection = page.get_by_test_id("calendar-connection")
    expect(connection).to_have_count(1)
    expect(connection).to_contain_text("owner@example.com")
    expect(connection).to_have_attribute("data-status", "connected")

    page.get_by_text("New service").click()
    page.fill("#id_name", "Corte de pelo")
    page.fill("#id_duration_minutes", "45")
    page.fill("#id_buffer_after_minutes", "15")
    page.select_option("#id_connection", label="Google Calendar · owner@example.com")
    page.get_by_test_id("service-form").get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("service-row")).to_contain_text("Corte de pelo")
    screenshot(page, "calendar.png")

    service = Service.objects.get()
    assert (service.duration_minutes, service.buffer_after_minutes) == (45, 15)
    assert service.connection == Connection.objects.get(status="connected")
