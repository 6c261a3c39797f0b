"""The accounts fixture (clients logged in with a role); `workspace` and the Graph stand-in are suite-wide."""

from __future__ import annotations

import pytest

from apps.accounts.tests.conftest import member_client
from apps.whatsapp.models import Channel
from apps.whatsapp.tests.factories import ChannelFactory

__all__ = ["member_client"]

WABA = "102290129340398"
TOKEN = "EAAG-template-token-0123456789"
APP_SECRET = "shop-app-secret-3f9a1c"


@pytest.fixture
def waba_channel(workspace, cloud_settings) -> Channel:
    """A Cloud number of `workspace` whose business account is WABA, talking to the Graph stand-in."""
    return ChannelFactory.create(workspace=workspace, waba_id=WABA, access_token=TOKEN, app_secret=APP_SECRET)
