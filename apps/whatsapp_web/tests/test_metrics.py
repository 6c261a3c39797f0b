from __future__ import annotations

from typing import Any

import pytest

from apps.whatsapp.models import Channel
from apps.whatsapp_web.services import web_session_state_set

pytestmark = pytest.mark.django_db


def test_sessions_by_state_and_heartbeat_age_are_exported(web_channel: Channel, metrics_client: Any) -> None:
    web_session_state_set(channel=web_channel, state="logged_out")

    text = metrics_client.get("/metrics").content.decode()

    assert 'chatbot_whatsapp_web_sessions{state="logged_out"} 1.0' in text
    assert 'chatbot_whatsapp_web_sessions{state="connected"} 0.0' in text
    assert f'chatbot_whatsapp_web_heartbeat_age_seconds{{channel="{web_channel.pk}"}}' in text
