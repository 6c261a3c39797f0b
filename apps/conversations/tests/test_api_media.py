from __future__ import annotations

from typing import Any, ClassVar

import pytest

from apps.accounts.models import Role
from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.conversations.transport import REASON_AUTH, MediaFile, SendError
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0fake-jpeg-bytes"


class FakeTransport:
    """Stands in for the channel's transport; each test sets `answer` and reads `calls`."""

    answer: ClassVar[MediaFile | SendError] = MediaFile(content=JPEG, mime_type="image/jpeg")
    calls: ClassVar[list[tuple[Any, str]]] = []

    def fetch_media(self, channel: Any, media_id: str) -> MediaFile:
        type(self).calls.append((channel.pk, media_id))
        if isinstance(self.answer, SendError):
            raise self.answer
        return self.answer


@pytest.fixture(autouse=True)
def transport(settings, monkeypatch) -> type[FakeTransport]:
    path = f"{__name__}.FakeTransport"
    settings.WHATSAPP_TRANSPORTS = {"cloud": path, "web": path, "sandbox": path}
    monkeypatch.setattr(FakeTransport, "calls", [])
    return FakeTransport


def media_message(workspace, kind: str = "image", media_id: str = "1037543291543636"):
    return MessageFactory(
        conversation=ConversationFactory(channel=ChannelFactory(workspace=workspace)),
        type=kind,
        body="",
        payload={"type": kind, kind: {"id": media_id, "mime_type": "image/jpeg", "sha256": "abc"}},
    )


def test_an_agent_gets_the_media_bytes_with_their_type(member_client, transport):
    client, agent = member_client(Role.AGENT)
    message = media_message(agent.workspace)

    response = client.get(f"/api/messages/{message.pk}/media")

    assert response.status_code == 200
    assert response.content == JPEG
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == f'inline; filename="message-{message.pk}.jpg"'
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert transport.calls == [(message.channel_id, "1037543291543636")]


def test_active_content_is_served_as_a_download(member_client, monkeypatch, transport):
    client, agent = member_client(Role.AGENT)
    monkeypatch.setattr(
        FakeTransport,
        "answer",
        MediaFile(content=b"<script>alert(1)</script>", mime_type="text/html", filename="x.html"),
    )
    message = media_message(agent.workspace, kind="document", media_id="55")

    response = client.get(f"/api/messages/{message.pk}/media")

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="x.html"'
    assert transport.calls == [(message.channel_id, "55")]


def test_a_transport_failure_is_a_502_with_the_error_shape(member_client, monkeypatch):
    client, agent = member_client(Role.AGENT)
    monkeypatch.setattr(
        FakeTransport,
        "answer",
        SendError("Media download failed: token expired", reason=REASON_AUTH, permanent=True),
    )
    message = media_message(agent.workspace)

    response = client.get(f"/api/messages/{message.pk}/media")

    assert response.status_code == 502
    assert response.json() == {"error": {"code": "auth", "message": "Media download failed: token expired"}}


def test_a_message_without_media_is_a_404_and_nothing_is_fetched(member_client, transport):
    client, agent = member_client(Role.AGENT)
    text = MessageFactory(conversation__channel__workspace=agent.workspace, type="text", body="hola")

    response = client.get(f"/api/messages/{text.pk}/media")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_media"
    assert transport.calls == []


def test_a_viewer_may_not_download_media(member_client, transport):
    client, viewer = member_client(Role.VIEWER)
    message = media_message(viewer.workspace)

    response = client.get(f"/api/messages/{message.pk}/media")

    assert response.status_code == 403
    assert transport.calls == []


def test_another_workspaces_media_answers_404_and_is_never_fetched(member_client, transport):
    client, _ = member_client(Role.OWNER)
    foreign = media_message(WorkspaceFactory())

    response = client.get(f"/api/messages/{foreign.pk}/media")

    assert response.status_code == 404
    assert transport.calls == []


def test_errors_stay_json_when_the_client_asks_for_an_image(member_client, transport):
    client, agent = member_client(Role.AGENT)
    text = MessageFactory(conversation__channel__workspace=agent.workspace, type="text")

    response = client.get(f"/api/messages/{text.pk}/media", HTTP_ACCEPT="image/webp")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "no_media"
