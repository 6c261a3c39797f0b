"""In a real browser: an owner connects a Google calendar (the stand-in's consent page sends the browser
back), adds a service and sees it on the calendar page; in English and Spanish, the week view shows a
booking, an agent books a caller by hand (a taken time is refused with the next free one) into the Google
stand-in's calendar, and an admin changes a service's reminder hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory, UserFactory, WorkspaceFactory
from apps.assistant.models import BusinessProfile
from apps.calendar import services
from apps.calendar.models import Booking, Connection, Service
from apps.calendar.tests.conftest import connect
from apps.calendar.tests.factories import ServiceFactory
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


EVERY_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
TEXT = {
    "en": {
        "taken": "That time is not free. The next free time is {when}.",
        "booked": "Booked: Corte on {when}.",
        "confirmed": "Confirmed",
        "saved": "Service saved.",
        "bad_hours": "Whole hours separated by commas, e.g. 24, 2.",
    },
    "es": {
        "taken": "Esa hora no está libre. La siguiente hora libre es {when}.",
        "booked": "Reservado: Corte el {when}.",
        "confirmed": "Confirmada",
        "saved": "Servicio guardado.",
        "bad_hours": "Horas enteras separadas por comas, p. ej. 24, 2.",
    },
}


def _log_in(browser, base_url: str, user, language: str):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    if language == "es":
        page.get_by_test_id("lang-es").click()
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.wait_for_url("**/inbox/")
    return context, page


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_week_view_a_manual_booking_and_a_services_reminders(
    live_server, browser, google_standin, language
):
    workspace = WorkspaceFactory.create(timezone="Europe/Madrid")
    BusinessProfile.objects.create(workspace=workspace, timezone="Europe/Madrid", opening_hours=EVERY_DAY)
    agent, admin = UserFactory.create(username="ana"), UserFactory.create(username="alba")
    MembershipFactory.create(user=agent, workspace=workspace, role=Role.AGENT)
    MembershipFactory.create(user=admin, workspace=workspace, role=Role.ADMIN)
    connection = connect((workspace, admin), "google")
    service = ServiceFactory(workspace=workspace, name="Corte", connection=connection, min_notice_minutes=60)
    zone = ZoneInfo("Europe/Madrid")
    today = dt.datetime.now(zone).date()
    tomorrow = today + dt.timedelta(days=1)
    week = (
        tomorrow - dt.timedelta(days=tomorrow.weekday()) - (today - dt.timedelta(days=today.weekday()))
    ).days // 7
    at_ten = dt.datetime.combine(tomorrow, dt.time(10), tzinfo=zone)
    lucia = services.booking_create(
        service=service,
        start=at_ten,
        idempotency_key="lucia",
        customer_name="Lucía",
        customer_phone="34600123456",
    )
    text = TEXT[language]

    # An agent sees Lucía's booking in tomorrow's column of the week view.
    context, page = _log_in(browser, live_server.url, agent, language)
    try:
        page.goto(f"{live_server.url}/calendar/?week={week}")
        expect(page.locator("html")).to_have_attribute("lang", language)
        day = page.locator(f"[data-testid=week-day][data-date='{tomorrow:%Y-%m-%d}']")
        expect(day.get_by_test_id("week-booking")).to_have_count(1)
        expect(day.get_by_test_id("week-booking")).to_contain_text("10:00–10:30 Corte")
        expect(day.get_by_test_id("week-booking")).to_contain_text("Lucía")
        expect(day.get_by_test_id("week-booking")).to_have_attribute("data-status", "confirmed")

        # They book a caller at the same time: refused with the next free time, which they then book.
        def book(at: str) -> None:
            form = page.get_by_test_id("booking-form")
            if not form.is_visible():
                page.locator(
                    "summary", has_text="New booking" if language == "en" else "Nueva reserva"
                ).click()
            form.locator("#id_service").select_option(str(service.pk))
            form.locator("#id_date").fill(f"{tomorrow:%Y-%m-%d}")
            form.locator("#id_time").fill(at)
            form.locator("#id_customer_name").fill("Pablo")
            form.locator("#id_customer_phone").fill("34600555000")
            form.get_by_role("button", name="Book" if language == "en" else "Reservar").click()

        book("10:00")
        expect(page.locator(".messages")).to_contain_text(
            text["taken"].format(when=f"{tomorrow:%Y-%m-%d} 10:30")
        )
        assert Booking.objects.filter(customer_name="Pablo").count() == 0
        book("10:30")
        expect(page.locator(".messages")).to_contain_text(
            text["booked"].format(when=f"{tomorrow:%Y-%m-%d} 10:30")
        )
        pablo = Booking.objects.get(customer_name="Pablo")
        assert (pablo.start, pablo.status) == (at_ten + dt.timedelta(minutes=30), Booking.Status.CONFIRMED)
        assert sorted(e["id"] for e in google_standin.events()) == sorted(
            [lucia.external_event_id, pablo.external_event_id]
        )
        page.goto(f"{live_server.url}/calendar/?week={week}")
        expect(day.get_by_test_id("week-booking")).to_have_count(2)
        expect(day.get_by_test_id("week-booking").nth(1)).to_contain_text("10:30–11:00 Corte")
        expect(page.get_by_test_id("booking-row").first).to_contain_text(text["confirmed"])
        expect(page.get_by_test_id("service-edit")).to_have_count(0)  # editing services is for admins
    finally:
        context.close()

    # An admin changes the service's reminders: a bad value is shown beside the field, then saved.
    context, page = _log_in(browser, live_server.url, admin, language)
    try:
        page.goto(f"{live_server.url}/calendar/")
        page.get_by_test_id("service-edit").click()
        form = page.get_by_test_id("service-edit-form")
        expect(form.locator("#id_reminder_hours")).to_have_value("24, 2")
        form.locator("#id_reminder_hours").fill("48, tres")
        form.get_by_role("button", name="Save" if language == "en" else "Guardar").click()
        expect(page.get_by_test_id("service-edit-form")).to_contain_text(text["bad_hours"])
        service.refresh_from_db()
        assert service.reminder_hours == [24, 2]
        page.get_by_test_id("service-edit-form").locator("#id_reminder_hours").fill("48, 3")
        page.get_by_test_id("service-edit-form").get_by_role(
            "button", name="Save" if language == "en" else "Guardar"
        ).click()
        expect(page.locator(".messages")).to_contain_text(text["saved"])
        service.refresh_from_db()
        assert (service.reminder_hours, service.name, service.connection_id) == (
            [48, 3],
            "Corte",
            connection.pk,
        )
    finally:
        context.close()
