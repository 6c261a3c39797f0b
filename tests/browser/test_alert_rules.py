"""In a real browser: an admin adds a sentiment rule on the dashboard, a customer complains in the
sandbox, and the alert is in the inbox with its kind."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from apps.alerts.models import Alert, AlertRule
from tests.browser.conftest import screenshot
from tests.browser.test_sandbox import demo_owner, log_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_a_sentiment_rule_and_a_complaint_in_the_sandbox_raises_it(stack, page):
    base_url, _ = stack
    username = demo_owner()

    log_in(page, base_url, username, "/alerts/")
    page.get_by_test_id("alert-rules-link").click()
    page.get_by_test_id("rule-new").click()
    page.fill("#id_name", "Angry customers")
    page.select_option("#id_kind", "sentiment")
    page.select_option("#id_severity", "high")
    page.fill("#id_threshold", "-0.3")
    screenshot(page, "alert-rule.png")
    page.get_by_test_id("rule-form").get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("rule-row")).to_contain_text("Negative sentiment")
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.threshold, rule.severity, rule.classifier) == (
        "sentiment",
        -0.3,
        "high",
        "lexicon",
    )

    page.goto(f"{base_url}/sandbox/")
    page.get_by_test_id("sandbox-name").fill("Rosa")
    page.get_by_test_id("sandbox-number").fill("+34 600 333 444")
    page.get_by_test_id("sandbox-start").click()
    page.get_by_test_id("sandbox-input").fill("¿Abrís el sábado?")
    page.get_by_test_id("sandbox-send").click()
    mine = page.locator("[data-testid=sandbox-message][data-direction=in]")
    expect(mine).to_have_count(1)
    expect(page.locator("[data-testid=sandbox-message][data-direction=out]")).to_have_count(1, timeout=60_000)
    page.get_by_test_id("sandbox-input").fill("La app NO funciona y nadie me contesta 😡")
    page.get_by_test_id("sandbox-send").click()
    expect(mine).to_have_count(2)

    page.goto(f"{base_url}/alerts/")
    row = page.get_by_test_id("alert-row")
    expect(row).to_have_count(1, timeout=60_000)
    expect(row).to_contain_text("Negative sentiment")
    expect(row).to_contain_text("no funciona")
    [alert] = Alert.objects.all()
    assert alert.message.body == "La app NO funciona y nadie me contesta 😡"
