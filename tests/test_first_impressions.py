"""What a newcomer meets first (issue 17, item 5): no 404 for the browser's /favicon.ico, admin labels
without Django's doubled plural ("Assistant settingss"), and the campaigns' recipients readable in the admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.test import Client

from apps.accounts.tests.factories import UserFactory


def test_favicon_ico_leads_to_the_icon_the_pages_link():
    response = Client().get("/favicon.ico")

    assert response.status_code == 301
    assert response["Location"] == "/static/dashboard/favicon.svg"
    assert finders.find("dashboard/favicon.svg") is not None


def test_no_admin_label_doubles_its_plural():
    doubled = [
        model._meta.verbose_name_plural
        for model in admin.site._registry
        if str(model._meta.verbose_name).endswith("s")
        and str(model._meta.verbose_name_plural) == f"{model._meta.verbose_name}s"
    ]
    assert doubled == []


@pytest.mark.django_db
def test_the_admin_lists_a_campaigns_recipients_read_only(tasks_captured):
    from apps.campaigns.models import Recipient
    from apps.campaigns.tests.factories import CampaignFactory
    from apps.conversations.tests.factories import ContactFactory
    from apps.whatsapp.tests.factories import ChannelFactory

    campaign = CampaignFactory.create()
    contact = ContactFactory.create(workspace=campaign.workspace, wa_id="34600111222")
    Recipient.objects.create(
        campaign=campaign, contact=contact, channel=ChannelFactory.create(workspace=campaign.workspace)
    )
    client = Client()
    client.force_login(UserFactory.create(is_staff=True, is_superuser=True))

    listed = client.get("/admin/campaigns/recipient/")
    settings_page = client.get("/admin/")

    assert listed.status_code == 200 and "34600111222" in listed.content.decode()
    assert client.get("/admin/campaigns/recipient/add/").status_code == 403
    assert "settingss" not in settings_page.content.decode().lower()
