"""The three-pane inbox page: what a row shows, the panes, working a conversation from the page, the
waiting counter, times in the workspace's zone, and the page's query count flat in its length."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import Role
from apps.conversations.models import CannedReply, Conversation, InternalNote, Message
from apps.conversations.tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_a_row_shows_preview_name_number_channel_assignee_waiting_and_unread(page_client, conversation):
    client, membership = page_client(Role.AGENT)
    contact = conversation.contact
    contact.name = "Lucía Pérez"
    contact.save()
    conversation.channel.name = "Tienda Centro"
    conversation.channel.save()
    Conversation.objects.filter(pk=conversation.pk).update(
        assignee=membership.user,
        unread_count=2,
        status=Conversation.Status.PENDING_HUMAN,
        last_inbound_at=timezone.now() - timedelta(minutes=12),
    )
    MessageFactory.create(conversation=conversation, body="¿Tenéis la talla 42?")

    page = client.get("/inbox/list/").content.decode()

    assert "Lucía Pérez" in page and f"+{contact.wa_id}" in page and "Tienda Centro" in page
    assert "¿Tenéis la talla 42?" in page
    assert f"→ {membership.user.get_username()}" in page
    assert 'data-testid="row-waiting">waiting 12\xa0minutes' in page
    assert "2 unread" in page


def test_the_conversation_opens_beside_the_list_with_notes_bubbles_and_the_customer(
    page_client, conversation
):
    client, membership = page_client(Role.AGENT)
    MessageFactory.create(conversation=conversation, body="Hola")
    MessageFactory.create(
        conversation=conversation, body="Soy el bot", direction="out", author=Message.Author.BOT
    )
    MessageFactory.create(
        conversation=conversation,
        body="Soy Marta",
        direction="out",
        author=Message.Author.AGENT,
        author_user=membership.user,
    )
    InternalNote.objects.create(
        workspace=conversation.workspace, conversation=conversation, author=membership.user, body="VIP"
    )

    page = client.get(f"/conversations/{conversation.pk}/").content.decode()

    assert 'data-testid="conversation-list"' in page and 'data-testid="contact-pane"' in page
    assert 'aria-current="true"' in page  # the open one is marked in the list
    assert 'class="bubble in author-customer' in page
    assert 'class="bubble out author-bot' in page
    assert f"Agent · {membership.user.get_username()}" in page
    assert 'data-testid="note"' in page and "VIP" in page
    assert page.index("Soy Marta") < page.index("VIP")  # by time


def test_a_viewer_sees_the_conversation_but_no_tools_to_work_it(page_client, conversation):
    client, _ = page_client(Role.VIEWER)

    page = client.get(f"/conversations/{conversation.pk}/").content.decode()

    assert 'data-testid="conversation-status"' in page
    for tool in ("reply-input", "note-input", "assign-me", "attach-link", "canned-search"):
        assert f'data-testid="{tool}"' not in page


def test_assigning_from_the_page_and_the_head_fragment_follows(page_client, conversation):
    client, membership = page_client(Role.AGENT)
    _, teammate = page_client(Role.AGENT)

    client.post(f"/conversations/{conversation.pk}/assign/", {"assignee": str(teammate.user_id)})
    head = client.get(f"/conversations/{conversation.pk}/head/").content.decode()
    client.post(f"/conversations/{conversation.pk}/assign/", {"assignee": "me"})

    assert f"Assigned to {teammate.user.get_username()}" in head
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == membership.user_id


def test_a_bad_assignee_is_refused_with_a_message(page_client, conversation):
    client, _ = page_client(Role.AGENT)

    response = client.post(f"/conversations/{conversation.pk}/assign/", {"assignee": "x; drop"}, follow=True)

    assert "Choose a teammate." in response.content.decode()
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None


def test_a_note_from_the_page_shows_in_the_thread_and_sends_nothing(
    page_client, conversation, tasks_captured
):
    client, _ = page_client(Role.AGENT)

    client.post(f"/conversations/{conversation.pk}/note/", {"body": "Llamar mañana"})
    thread = client.get(f"/conversations/{conversation.pk}/thread/").content.decode()

    assert "Llamar mañana" in thread
    assert not Message.objects.filter(conversation=conversation).exists()
    assert tasks_captured.ids("outbound.number_send") == []


def test_canned_replies_are_searched_and_filled_in_for_this_customer(page_client, conversation, workspace):
    client, membership = page_client(Role.AGENT)
    conversation.contact.name = "Ana"
    conversation.contact.save()
    CannedReply.objects.create(workspace=workspace, title="Saludo", body="Hola {{name}}, soy {{agent}}.")
    CannedReply.objects.create(workspace=workspace, title="Envíos", body="Enviamos en 48 h.")

    found = client.get(f"/conversations/{conversation.pk}/canned/", {"q": "salu"}).content.decode()

    assert f"Hola Ana, soy {membership.user.get_username()}." in found
    assert "Enviamos" not in found


def test_canned_replies_page_creates_and_a_supervisor_deletes(page_client, workspace):
    agent, _ = page_client(Role.AGENT)
    supervisor, _ = page_client(Role.SUPERVISOR)

    agent.post("/inbox/replies/", {"title": "Horario", "body": "De 9 a 18."})
    reply = CannedReply.objects.get(workspace=workspace)
    refused = agent.post(f"/inbox/replies/{reply.pk}/delete/")
    supervisor.post(f"/inbox/replies/{reply.pk}/delete/")

    assert refused.status_code == 403
    assert not CannedReply.objects.exists()


def test_the_navigation_counts_conversations_waiting_for_a_person(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    ConversationFactory.create(channel=conversation.channel, status=Conversation.Status.PENDING_HUMAN)
    ConversationFactory.create(status=Conversation.Status.PENDING_HUMAN)  # another workspace's

    page = client.get("/queue/").content.decode()
    fragment = client.get("/inbox/waiting/").content.decode()

    assert 'data-waiting-count="1"' in page and 'data-waiting-count="1"' in fragment
    assert 'data-testid="waiting-badge">1<' in fragment


def test_times_are_shown_in_the_workspaces_zone(page_client, conversation, workspace):
    workspace.timezone = "America/Mexico_City"
    workspace.save()
    client, _ = page_client(Role.VIEWER)
    message = MessageFactory.create(conversation=conversation, body="Hola")
    at = datetime(2026, 3, 2, 15, 5, tzinfo=UTC)  # 09:05 in Mexico City
    Message.objects.filter(pk=message.pk).update(created_at=at)

    thread = client.get(f"/conversations/{conversation.pk}/thread/").content.decode()

    assert "2026-03-02T09:05:00-06:00" in thread
    assert "03/02/2026 9:05 a.m." in thread  # another day: the date and the hour, in English's formats
    client.post("/i18n/setlang/", {"language": "es", "next": "/inbox/"})
    spanish = client.get(f"/conversations/{conversation.pk}/thread/").content.decode()
    assert "02/03/2026 09:05" in spanish  # day first, 24-hour clock


def test_the_inbox_page_takes_as_many_queries_for_60_rows_as_for_3(page_client, workspace, conversation):
    client, _ = page_client(Role.AGENT)

    def fill(count):
        for _ in range(count):
            row = ConversationFactory.create(channel=conversation.channel)
            MessageFactory.create(conversation=row)

    fill(3)
    with CaptureQueriesContext(connection) as few:
        client.get("/inbox/")
    fill(57)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/inbox/").content.decode()

    assert page.count('data-testid="conversation-row"') == 61
    assert len(many) == len(few)


def test_a_file_from_the_computer_is_uploaded_and_shown_in_the_thread(
    page_client, workspace, cloud_settings, graph_standin
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.whatsapp.tests.factories import ChannelFactory

    client, _ = page_client(Role.AGENT)
    channel = ChannelFactory.create(workspace=workspace, access_token="EAAG-token-for-uploads")
    conversation = ConversationFactory.create(channel=channel)
    photo = SimpleUploadedFile("azul.png", b"\x89PNG\r\n\x1a\n", content_type="image/png")

    client.post(f"/conversations/{conversation.pk}/attach/", {"file": photo, "caption": "Talla 42"})
    thread = client.get(f"/conversations/{conversation.pk}/thread/").content.decode()

    [upload] = graph_standin.uploads
    sent = Message.objects.get(conversation=conversation)
    assert (sent.type, sent.payload) == ("image", {"id": upload["id"], "caption": "Talla 42"})
    assert 'data-testid="attachment"' in thread and "Talla 42" in thread


def test_a_file_of_a_kind_whatsapp_refuses_is_explained(page_client, conversation):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client, _ = page_client(Role.AGENT)
    program = SimpleUploadedFile("setup.exe", b"MZ", content_type="application/x-msdownload")

    response = client.post(f"/conversations/{conversation.pk}/attach/", {"file": program}, follow=True)

    assert "WhatsApp does not take this kind of file" in response.content.decode()
    assert not Message.objects.filter(conversation=conversation).exists()


def test_the_inbox_marks_a_message_whose_file_is_unavailable(page_client, conversation) -> None:
    client, _ = page_client(Role.AGENT)
    MessageFactory.create(
        conversation=conversation,
        type="image",
        body="",
        payload={"image": {"id": "x", "unavailable": "larger than 100 MB"}},
    )
    MessageFactory.create(conversation=conversation, type="image", body="", payload={"image": {"id": "y"}})

    page = client.get(f"/conversations/{conversation.pk}/").content.decode()

    assert page.count('data-testid="media-unavailable"') == 1
    assert 'title="larger than 100 MB"' in page
    assert page.count("<em>[image]</em>") == 2
