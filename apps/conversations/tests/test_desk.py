"""Working a conversation: assigning it, internal notes, canned replies, file links; and the inbox's
reads (filters, the last message, the waiting counter) in one query whatever the page's length."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, UserFactory, WorkspaceFactory
from apps.audit.models import AuditEntry
from apps.conversations import selectors
from apps.conversations.models import CannedReply, Conversation, InternalNote, Message
from apps.conversations.selectors import InboxView
from apps.conversations.services import desk, replies
from apps.conversations.tests.factories import ContactFactory, ConversationFactory, MessageFactory
from apps.conversations.tests.test_replies import channel, customer_says  # noqa: F401 - a fixture
from apps.live.models import LiveEvent
from apps.whatsapp.tests.factories import ChannelFactory
from chatbot.exceptions import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db


def _agent(workspace, role=Role.AGENT):
    return MembershipFactory.create(workspace=workspace, role=role).user


# --- assigning --------------------------------------------------------------------------------
def test_a_conversation_is_assigned_to_a_teammate_audited_and_announced_live(workspace):
    conversation = ConversationFactory.create(channel__workspace=workspace)
    me, teammate = _agent(workspace), _agent(workspace)

    desk.conversation_assign(conversation=conversation, assignee_id=teammate.pk, user=me)

    conversation.refresh_from_db()
    assert conversation.assignee_id == teammate.pk
    assert conversation.status == Conversation.Status.OPEN  # assigning is not taking over
    assert AuditEntry.objects.filter(action="conversation.assign", actor_id=me.pk).count() == 1
    assert LiveEvent.objects.filter(kind="conversation", conversation_id=conversation.pk).count() == 1
    desk.conversation_assign(conversation=conversation, assignee_id=None, user=me)
    conversation.refresh_from_db()
    assert conversation.assignee_id is None


@pytest.mark.parametrize("who", ["viewer", "stranger", "other_workspace"])
def test_only_a_member_who_may_answer_can_be_assigned(workspace, who):
    conversation = ConversationFactory.create(channel__workspace=workspace)
    me = _agent(workspace)
    target = {
        "viewer": lambda: _agent(workspace, Role.VIEWER),
        "stranger": UserFactory.create,
        "other_workspace": lambda: _agent(WorkspaceFactory.create()),
    }[who]()

    with pytest.raises(ValidationFailed):
        desk.conversation_assign(conversation=conversation, assignee_id=target.pk, user=me)

    conversation.refresh_from_db()
    assert conversation.assignee_id is None
    assert not LiveEvent.objects.filter(conversation_id=conversation.pk).exists()


def test_a_closed_conversation_keeps_its_assignee(workspace):
    conversation = ConversationFactory.create(channel__workspace=workspace, status=Conversation.Status.CLOSED)
    me = _agent(workspace)

    with pytest.raises(Conflict):
        desk.conversation_assign(conversation=conversation, assignee_id=me.pk, user=me)

    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None


# --- internal notes ---------------------------------------------------------------------------
def test_a_note_is_kept_for_staff_and_never_queued_to_whatsapp(workspace, tasks_captured):
    conversation = ConversationFactory.create(channel__workspace=workspace)
    me = _agent(workspace)

    note = desk.note_add(conversation=conversation, user=me, body="  VIP: call back before 6  ")

    assert (note.body, note.author_id, note.workspace_id) == ("VIP: call back before 6", me.pk, workspace.pk)
    assert not Message.objects.filter(conversation=conversation).exists()
    assert tasks_captured.ids("outbound.number_send") == []
    assert LiveEvent.objects.get(kind="note").payload == {"note_id": note.pk}


@pytest.mark.parametrize("body", ["", "   ", "x" * (InternalNote.BODY_LIMIT + 1)])
def test_an_empty_or_overlong_note_is_refused(workspace, body):
    conversation = ConversationFactory.create(channel__workspace=workspace)

    with pytest.raises(ValidationFailed):
        desk.note_add(conversation=conversation, user=_agent(workspace), body=body)

    assert not InternalNote.objects.exists()


def test_a_note_never_reaches_the_assistants_prompt(channel, llm_standin, standin_providers):  # noqa: F811
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Claro."
    first = customer_says(channel, "hola")
    replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk)
    desk.note_add(
        conversation=first.conversation, user=_agent(channel.workspace), body="SECRET-NOTE angry customer"
    )
    second = customer_says(channel, "¿abrís mañana?")

    replies.reply_generate(conversation_id=second.conversation_id, message_id=second.pk)

    sent = [m["content"] for m in llm_standin.chat_requests()[-1].messages]
    assert any("¿abrís mañana?" in str(part) for part in sent)
    assert not any("SECRET-NOTE" in str(part) for part in sent)
    assert not Message.objects.filter(body__contains="SECRET-NOTE").exists()


# --- canned replies ---------------------------------------------------------------------------
def test_a_canned_reply_fills_in_the_customers_values_and_leaves_unknown_ones_visible(workspace):
    contact = ContactFactory.create(
        workspace=workspace, name="Lucía Pérez", wa_id="34600111222", attributes={"order": "A-17"}
    )
    reply = desk.canned_reply_create(
        workspace_id=workspace.pk,
        title="Order",
        body="Hola {{first_name}} ({{ name }}, {{number}}): tu pedido {{order}} sale hoy. {{agent}} {{unknown}}",
    )

    text = desk.canned_reply_render(reply=reply, contact=contact, agent_name="Marta")

    assert text == "Hola Lucía (Lucía Pérez, +34600111222): tu pedido A-17 sale hoy. Marta {{unknown}}"


def test_canned_replies_are_searched_within_the_workspace_and_titles_are_unique(workspace):
    desk.canned_reply_create(workspace_id=workspace.pk, title="Opening hours", body="9 to 18")
    desk.canned_reply_create(workspace_id=workspace.pk, title="Refunds", body="Within 14 days")
    other = WorkspaceFactory.create()
    desk.canned_reply_create(workspace_id=other.pk, title="Opening hours", body="theirs")

    found = selectors.canned_reply_list(workspace=workspace, q="days")

    assert [r.title for r in found] == ["Refunds"]
    assert [r.body for r in selectors.canned_reply_list(workspace=workspace, q="opening")] == ["9 to 18"]
    with pytest.raises(Conflict):
        desk.canned_reply_create(workspace_id=workspace.pk, title="Refunds", body="again")
    with pytest.raises(ValidationFailed):
        desk.canned_reply_create(workspace_id=workspace.pk, title=" ", body="x")
    assert CannedReply.objects.filter(workspace=workspace).count() == 2


# --- file links -------------------------------------------------------------------------------
def test_a_document_link_is_queued_like_a_reply_with_its_file_name(workspace, tasks_captured):
    conversation = ConversationFactory.create(channel__workspace=workspace)
    me = _agent(workspace)

    [row] = desk.conversation_attachment_send(
        conversation=conversation,
        user=me,
        kind="document",
        link="https://files.example.com/price%20list.pdf",
        caption="Prices",
    )

    assert (row.type, row.body, row.author, row.send_state) == ("document", "Prices", "agent", "pending")
    assert row.payload == {
        "link": "https://files.example.com/price%20list.pdf",
        "caption": "Prices",
        "filename": "price list.pdf",
    }
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == (Conversation.Status.HUMAN, me.pk)


@pytest.mark.parametrize(
    ("kind", "link"),
    [
        ("image", "http://example.com/a.jpg"),
        ("image", "https://"),
        ("image", "https://example.com/a b.jpg"),
        ("sticker", "https://example.com/a.webp"),
    ],
)
def test_a_file_link_that_whatsapp_cannot_fetch_is_refused(workspace, kind, link):
    conversation = ConversationFactory.create(channel__workspace=workspace)

    with pytest.raises(ValidationFailed):
        desk.conversation_attachment_send(
            conversation=conversation, user=_agent(workspace), kind=kind, link=link
        )

    assert not Message.objects.exists()


# --- the inbox's reads ------------------------------------------------------------------------
def _ids(rows):
    return {row.pk for row in rows}


def test_the_inbox_filters_by_who_has_it_by_number_and_by_tag(workspace):
    me = _agent(workspace)
    number, other_number = (
        ChannelFactory.create(workspace=workspace),
        ChannelFactory.create(workspace=workspace),
    )
    bot = ConversationFactory.create(channel=number, contact__tags=["VIP"])
    waiting = ConversationFactory.create(channel=number, status=Conversation.Status.PENDING_HUMAN)
    mine = ConversationFactory.create(channel=other_number, status=Conversation.Status.HUMAN, assignee=me)
    closed = ConversationFactory.create(channel=number, status=Conversation.Status.CLOSED)
    ConversationFactory.create(status=Conversation.Status.PENDING_HUMAN)  # another workspace's

    def view(name="live", **kwargs):
        return _ids(selectors.inbox_list(workspace=workspace, user_id=me.pk, view=name, **kwargs))

    assert view() == {bot.pk, waiting.pk, mine.pk}
    assert view(InboxView.MINE) == {mine.pk}
    assert view(InboxView.UNASSIGNED) == {bot.pk, waiting.pk}
    assert view(InboxView.WAITING) == {waiting.pk}
    assert view(InboxView.BOT) == {bot.pk}
    assert view(InboxView.CLOSED) == {closed.pk}
    assert view(channel=other_number.pk) == {mine.pk}
    assert view(tag="vip") == {bot.pk}
    assert selectors.waiting_count(workspace=workspace) == 1


def test_each_row_carries_its_last_message_and_the_page_is_one_query(workspace):
    me = _agent(workspace)
    for n in range(30):
        conversation = ConversationFactory.create(channel__workspace=workspace)
        MessageFactory.create(conversation=conversation, body=f"first {n}")
        MessageFactory.create(
            conversation=conversation, body=f"last {n}", direction="out", author=Message.Author.BOT
        )

    with CaptureQueriesContext(connection) as queries:
        rows = list(selectors.inbox_list(workspace=workspace, user_id=me.pk)[:100])
        shown = [(r.contact.display_name, r.channel.pk, r.assignee, r.last_body, r.last_author) for r in rows]

    assert len(queries) == 1
    assert len(shown) == 30
    assert {(body, author) for *_, body, author in shown} == {(f"last {n}", "bot") for n in range(30)}


def test_the_contacts_history_lists_their_other_conversations_only(workspace):
    current = ConversationFactory.create(channel__workspace=workspace)
    earlier = ConversationFactory.create(
        channel=current.channel, contact=current.contact, status=Conversation.Status.CLOSED
    )
    MessageFactory.create(conversation=earlier)
    ConversationFactory.create(channel=current.channel)  # someone else

    history = selectors.contact_history(conversation=current)

    assert [(c.pk, c.message_count) for c in history] == [(earlier.pk, 1)]


# --- files from staff's computer --------------------------------------------------------------
@pytest.fixture
def cloud_conversation(workspace, cloud_settings):
    number = ChannelFactory.create(workspace=workspace, access_token="EAAG-token-for-uploads")
    return ConversationFactory.create(channel=number)


def test_an_uploaded_document_is_stored_with_whatsapp_then_queued_by_its_id(
    cloud_conversation, graph_standin, workspace
):
    me = _agent(workspace)

    [row] = desk.conversation_file_send(
        conversation=cloud_conversation,
        user=me,
        content=b"%PDF-1.4 price list",
        mime_type="application/pdf",
        filename="C:\\Users\\ana\\precios 2026.pdf",
        caption="Precios",
    )

    [upload] = graph_standin.uploads
    assert upload["filename"] == "precios 2026.pdf"
    assert (row.type, row.body, row.send_state) == ("document", "Precios", "pending")
    assert row.payload == {"id": upload["id"], "caption": "Precios", "filename": "precios 2026.pdf"}


@pytest.mark.parametrize(
    ("mime_type", "content"),
    [
        ("application/x-msdownload", b"MZ"),  # not a kind WhatsApp takes
        ("image/png", b""),
        ("image/png", b"x" * (desk.IMAGE_LIMIT + 1)),
    ],
)
def test_a_file_whatsapp_would_refuse_is_not_uploaded(
    cloud_conversation, graph_standin, workspace, mime_type, content
):
    with pytest.raises(ValidationFailed):
        desk.conversation_file_send(
            conversation=cloud_conversation,
            user=_agent(workspace),
            content=content,
            mime_type=mime_type,
            filename="f",
        )

    assert graph_standin.uploads == []
    assert not Message.objects.exists()


def test_no_upload_once_the_window_closed(cloud_conversation, graph_standin, workspace):
    Conversation.objects.filter(pk=cloud_conversation.pk).update(last_inbound_at=None)
    cloud_conversation.refresh_from_db()

    with pytest.raises(Conflict):
        desk.conversation_file_send(
            conversation=cloud_conversation,
            user=_agent(workspace),
            content=b"\x89PNG",
            mime_type="image/png",
            filename="a.png",
        )

    assert graph_standin.uploads == []


def test_the_admin_lists_notes_read_only_and_canned_replies(admin_client, workspace):
    conversation = ConversationFactory.create(channel__workspace=workspace)
    note = desk.note_add(conversation=conversation, user=_agent(workspace), body="Vuelve el lunes")
    desk.canned_reply_create(workspace_id=workspace.pk, title="Horario", body="9-18")

    notes = admin_client.get("/admin/conversations/internalnote/")
    replies_page = admin_client.get("/admin/conversations/cannedreply/")
    add = admin_client.get("/admin/conversations/internalnote/add/")
    detail = admin_client.get(f"/admin/conversations/internalnote/{note.pk}/change/")

    assert notes.status_code == 200 and replies_page.status_code == 200
    assert "Horario" in replies_page.content.decode()
    assert add.status_code == 403
    assert "Vuelve el lunes" in detail.content.decode()
