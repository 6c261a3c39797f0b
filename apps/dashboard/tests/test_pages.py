from __future__ import annotations

import re

import pytest
from django.test import Client

from apps.accounts.models import Role
from apps.accounts.tests.factories import PASSWORD, MembershipFactory
from apps.conversations.models import Conversation, Message
from apps.conversations.tests.factories import (
    ConversationFactory,
    MessageFactory,
    outbound_message,
    reaction_message,
)

pytestmark = pytest.mark.django_db

PAGES = ["/inbox/", "/queue/", "/alerts/", "/business/", "/business/providers/"]


def test_login_with_the_form_then_logout_with_a_post(workspace):
    membership = MembershipFactory.create(workspace=workspace, role=Role.VIEWER)
    client = Client()

    page = client.get("/login/")
    response = client.post("/login/", {"username": membership.user.username, "password": PASSWORD})

    assert page.status_code == 200
    assert b'data-testid="login-submit"' in page.content
    assert b'id="id_username"' in page.content and b'id="id_password"' in page.content
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert client.get("/inbox/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/inbox/")["Location"] == "/login/?next=/inbox/"


def test_a_wrong_password_keeps_the_user_out(workspace):
    membership = MembershipFactory.create(workspace=workspace)
    client = Client()

    response = client.post("/login/", {"username": membership.user.username, "password": "wrong"})

    assert response.status_code == 200
    assert client.get("/inbox/").status_code == 302


@pytest.mark.parametrize("url", [*PAGES, "/conversations/1/", "/inbox/list/", "/queue/list/"])
def test_anonymous_visitors_are_sent_to_the_login_page(url):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("url", PAGES)
def test_every_page_renders_for_a_viewer(page_client, url):
    client, _ = page_client(Role.VIEWER)

    response = client.get(url)

    assert response.status_code == 200
    assert b'data-testid="logout"' in response.content
    assert b'href="#main"' in response.content  # the skip link


def test_a_user_without_a_membership_is_refused():
    from apps.accounts.tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory.create())

    assert client.get("/inbox/").status_code == 403


def test_the_inbox_lists_this_workspace_only_with_filters_and_unread_counts(
    page_client, workspace, conversation
):
    client, _ = page_client(Role.VIEWER)
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=3)
    closed = ConversationFactory.create(channel=conversation.channel, status=Conversation.Status.CLOSED)
    foreign = ConversationFactory.create()

    everything = client.get("/inbox/").content.decode()
    only_closed = client.get("/inbox/list/", {"view": "closed"}).content.decode()

    assert f'data-conversation-id="{conversation.pk}"' in everything
    assert f'data-conversation-id="{closed.pk}"' not in everything  # the default shows live ones
    assert f'data-conversation-id="{foreign.pk}"' not in everything
    assert "3 unread" in everything
    assert f'data-conversation-id="{closed.pk}"' in only_closed
    assert f'data-conversation-id="{conversation.pk}"' not in only_closed


def test_the_inbox_search_finds_by_name_and_text(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    conversation.contact.name = "Lucía Pérez"
    conversation.contact.save()
    other = ConversationFactory.create(channel=conversation.channel)
    MessageFactory.create(conversation=other, body="¿Abrís el domingo?")

    by_name = client.get("/inbox/", {"q": "lucía"}).content.decode()
    by_text = client.get("/inbox/", {"q": "domingo"}).content.decode()

    assert f'data-conversation-id="{conversation.pk}"' in by_name
    assert f'data-conversation-id="{other.pk}"' not in by_name
    assert f'data-conversation-id="{other.pk}"' in by_text


def test_another_workspaces_conversation_is_not_found(page_client):
    client, _ = page_client(Role.OWNER)
    foreign = ConversationFactory.create()

    assert client.get(f"/conversations/{foreign.pk}/").status_code == 404
    assert client.get(f"/conversations/{foreign.pk}/thread/").status_code == 404
    assert client.post(f"/conversations/{foreign.pk}/takeover/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.status == Conversation.Status.OPEN


def test_the_thread_shows_messages_ticks_and_the_customer(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    conversation.contact.name = "Ana"
    conversation.contact.tags = ["vip", "madrid"]
    conversation.contact.opted_out = True
    conversation.contact.save()
    MessageFactory.create(conversation=conversation, body="Hola")
    outbound_message(conversation=conversation, body="Buenas", status=Message.Status.READ, send_state="sent")
    outbound_message(
        conversation=conversation, body="Fallo", status=Message.Status.FAILED, send_state="failed"
    )

    html = client.get(f"/conversations/{conversation.pk}/").content.decode()

    assert 'data-direction="in"' in html and 'data-direction="out"' in html
    assert 'data-testid="tick" data-status="read"' in html
    assert 'data-testid="tick" data-status="failed"' in html
    assert "vip" in html and "madrid" in html
    assert conversation.contact.wa_id in html
    assert 'data-testid="takeover"' not in html  # a viewer gets no action buttons


def bubbles(html: str) -> dict[int, str]:
    """Each message bubble of a thread page, by message id."""
    found = {}
    for match in re.finditer(
        r'<li [^>]*data-testid="message"[^>]*data-message-id="(\d+)"[^>]*>(.*?)</li>', html, re.S
    ):
        found[int(match.group(1))] = match.group(0)
    return found


def test_a_reaction_shows_on_the_message_it_reacts_to_and_a_removed_one_is_gone(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    question = MessageFactory(conversation=conversation, body="¿Abrís hoy?")
    answer = outbound_message(
        conversation=conversation, body="Sí, hasta las 20:00.", send_state="sent", wamid="wamid.answer"
    )
    reaction_message(conversation=conversation, to=answer.wamid, emoji="😮")
    page = f"/conversations/{conversation.pk}/"

    reacted = bubbles(client.get(page).content.decode())
    reaction_message(conversation=conversation, to=answer.wamid, emoji="")
    removed = bubbles(client.get(f"{page}thread/").content.decode())  # the fragment live updates fetch

    assert list(reacted) == [question.pk, answer.pk]  # the reaction is no bubble of its own
    assert 'data-testid="reaction"' in reacted[answer.pk] and ">😮</span>" in reacted[answer.pk]
    assert 'title="Customer\'s reaction: 😮"' in reacted[answer.pk]
    assert 'data-testid="reaction"' not in reacted[question.pk]
    assert list(removed) == [question.pk, answer.pk]
    assert 'data-testid="reaction"' not in removed[answer.pk] and "😮" not in removed[answer.pk]


def test_a_reaction_to_an_earlier_conversations_message_is_said_in_both_languages(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    earlier = ConversationFactory.create(
        channel=conversation.channel, contact=conversation.contact, status=Conversation.Status.CLOSED
    )
    old = outbound_message(
        conversation=earlier, body="Tu pedido está listo.", send_state="sent", wamid="wamid.old"
    )
    note = reaction_message(conversation=conversation, to=old.wamid, emoji="🙏")

    english = bubbles(client.get(f"/conversations/{conversation.pk}/").content.decode())
    on_target = bubbles(client.get(f"/conversations/{earlier.pk}/").content.decode())
    client.post("/i18n/setlang/", {"language": "es", "next": "/inbox/"})
    spanish = bubbles(client.get(f"/conversations/{conversation.pk}/").content.decode())
    spanish_target = bubbles(client.get(f"/conversations/{earlier.pk}/").content.decode())

    assert "Reacted 🙏 to an earlier message" in english[note.pk]
    assert "Reaccionó con 🙏 a un mensaje anterior" in spanish[note.pk]
    assert 'data-testid="reaction"' in on_target[old.pk] and ">🙏</span>" in on_target[old.pk]
    assert 'title="Reacción del cliente: 🙏"' in spanish_target[old.pk]


def test_customer_html_is_escaped_everywhere(page_client, conversation):
    client, _ = page_client(Role.AGENT)
    conversation.contact.name = "<img src=x onerror=alert(1)>"
    conversation.contact.save()
    MessageFactory.create(conversation=conversation, body="<script>alert('x')</script>")

    thread = client.get(f"/conversations/{conversation.pk}/").content.decode()
    inbox = client.get("/inbox/").content.decode()

    assert "&lt;script&gt;alert(" in thread
    assert "<script>alert" not in thread
    assert "<img src=x" not in thread and "<img src=x" not in inbox
    assert "&lt;img src=x" in inbox


def test_take_over_reply_and_close_through_the_page(
    page_client, conversation, tasks_captured, django_capture_on_commit_callbacks
):
    client, agent = page_client(Role.AGENT)
    url = f"/conversations/{conversation.pk}/"

    with django_capture_on_commit_callbacks(execute=True):
        takeover = client.post(f"{url}takeover/")
    conversation.refresh_from_db()
    assert takeover.status_code == 302 and takeover["Location"] == url
    assert (conversation.status, conversation.assignee_id) == (Conversation.Status.HUMAN, agent.user_id)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"{url}reply/", {"body": "Te ayudo yo"})
    reply = Message.objects.get(conversation=conversation, direction=Message.Direction.OUTBOUND)
    assert (reply.body, reply.author, reply.author_user_id) == ("Te ayudo yo", "agent", agent.user_id)
    assert reply.send_state == Message.SendState.PENDING
    assert tasks_captured.ids("outbound.number_send") == [reply.channel_id]  # its number's sender is woken

    client.post(f"{url}handback/")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN

    client.post(f"{url}close/")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED


def test_a_reply_to_a_closed_conversation_is_refused_with_a_message(
    page_client, conversation, tasks_captured
):
    client, _ = page_client(Role.AGENT)
    Conversation.objects.filter(pk=conversation.pk).update(status=Conversation.Status.CLOSED)

    response = client.post(f"/conversations/{conversation.pk}/reply/", {"body": "hola"}, follow=True)

    assert "The conversation is closed." in response.content.decode()
    assert not Message.objects.filter(direction=Message.Direction.OUTBOUND).exists()
    assert tasks_captured.ids("outbound.number_send") == []


def test_a_viewer_cannot_act_on_a_conversation(page_client, conversation, tasks_captured):
    client, _ = page_client(Role.VIEWER)

    assert client.post(f"/conversations/{conversation.pk}/takeover/").status_code == 403
    assert client.post(f"/conversations/{conversation.pk}/reply/", {"body": "x"}).status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN
    assert tasks_captured.ids("outbound.number_send") == []


def test_opening_a_thread_as_an_agent_clears_its_unread_count(page_client, conversation):
    client, _ = page_client(Role.AGENT)
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=2)

    client.get(f"/conversations/{conversation.pk}/")

    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_the_queue_lists_rows_and_a_supervisor_cancels_and_retries(
    page_client, conversation, tasks_captured, django_capture_on_commit_callbacks
):
    client, _ = page_client(Role.SUPERVISOR)
    pending = outbound_message(conversation=conversation, body="pendiente")
    failed = outbound_message(conversation=conversation, body="fallido", send_state="failed")
    foreign = outbound_message(conversation=ConversationFactory.create())

    html = client.get("/queue/").content.decode()
    cancel = client.post(f"/queue/{pending.pk}/cancel/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/queue/{failed.pk}/retry/")

    assert html.count('data-testid="queue-row"') == 2
    assert f'data-message-id="{foreign.pk}"' not in html
    assert cancel.status_code == 302
    pending.refresh_from_db()
    failed.refresh_from_db()
    assert pending.send_state == Message.SendState.CANCELLED
    assert failed.send_state == Message.SendState.RETRY
    assert tasks_captured.ids("outbound.number_send") == [failed.channel_id]  # its number's sender is woken
    assert client.post(f"/queue/{foreign.pk}/cancel/").status_code == 404


def test_the_queue_filters_by_state(page_client, conversation):
    client, _ = page_client(Role.VIEWER)
    pending = outbound_message(conversation=conversation)
    sent = outbound_message(conversation=conversation, send_state="sent")

    html = client.get("/queue/list/", {"state": "sent"}).content.decode()

    assert f'data-message-id="{sent.pk}"' in html
    assert f'data-message-id="{pending.pk}"' not in html


def test_an_agent_may_not_cancel_or_retry_queue_rows(page_client, conversation, tasks_captured):
    client, _ = page_client(Role.AGENT)
    pending = outbound_message(conversation=conversation)

    html = client.get("/queue/").content.decode()
    response = client.post(f"/queue/{pending.pk}/cancel/")

    assert 'data-testid="queue-cancel"' not in html
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.send_state == Message.SendState.PENDING


def test_cancelling_a_sent_row_is_refused_with_a_message(page_client, conversation):
    client, _ = page_client(Role.SUPERVISOR)
    sent = outbound_message(conversation=conversation, send_state="sent")

    response = client.post(f"/queue/{sent.pk}/cancel/", follow=True)

    assert "cannot be cancelled" in response.content.decode()
    sent.refresh_from_db()
    assert sent.send_state == Message.SendState.SENT


def test_spanish_after_the_language_switch(page_client):
    client, _ = page_client(Role.VIEWER)

    switched = client.post("/i18n/setlang/", {"language": "es", "next": "/inbox/"})
    spanish = client.get("/inbox/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/inbox/"})
    english = client.get("/inbox/").content.decode()

    assert switched.status_code == 302
    assert '<html lang="es">' in spanish
    assert "Bandeja de entrada" in spanish and "Cerrar sesión" in spanish
    assert "Bandeja de entrada" not in english and "Log out" in english
    assert 'data-testid="lang-es"' in english and 'data-testid="lang-en"' in english
