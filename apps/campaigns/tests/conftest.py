"""The accounts fixture (clients logged in with a role); `workspace` and the Graph stand-in are suite-wide."""

from __future__ import annotations

import pytest

from apps.accounts.tests.conftest import member_client
from apps.accounts.tests.factories import UserFactory
from apps.campaigns.models import Template
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory

__all__ = ["member_client"]

WABA = "102290129340398"
TOKEN = "EAAG-template-token-0123456789"
APP_SECRET = "shop-app-secret-3f9a1c"
BODY = [
    {"type": "BODY", "text": "Hola {{1}}, {{2}} de descuento.", "example": {"body_text": [["Ana", "10%"]]}}
]


@pytest.fixture
def waba_channel(workspace, cloud_settings) -> Channel:
    """A Cloud number of `workspace` whose business account is WABA, talking to the Graph stand-in."""
    return ChannelFactory.create(workspace=workspace, waba_id=WABA, access_token=TOKEN, app_secret=APP_SECRET)


@pytest.fixture
def admin(workspace):
    return UserFactory.create()


@pytest.fixture
def template(waba_channel) -> Template:
    return Template.objects.create(
        workspace=waba_channel.workspace,
        channel=waba_channel,
        waba_id=WABA,
        name="oferta",
        language="es",
        category=Template.Category.MARKETING,
        status=Template.Status.APPROVED,
        components=BODY,
        variable_count=2,
    )
