from __future__ import annotations

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.conversations.models import Contact, Message
from apps.conversations.tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    outbound_message,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize(
    "page",
    [
        "/admin/conversations/contact/",
        "/admin/conversations/conversation/",
        "/admin/conversations/message/?send_state__exact=failed",
        "/admin/conversations/conversationsettings/",
        "/admin/whatsapp/channel/",
    ],
)
def test_admin_lists_open(staff, page):
    MessageFactory()
    outbound_message(send_state=Message.SendState.FAILED)

    assert staff.get(page).status_code == 200


def test_admin_pages_of_one_row_open(staff):
    message = MessageFactory()

    pages = [
        f"/admin/conversations/contact/{message.contact_id}/change/",
        f"/admin/conversations/conversation/{message.conversation_id}/change/",
        f"/admin/conversations/message/{message.pk}/change/",
    ]

    assert [staff.get(page).status_code for page in pages] == [200, 200, 200]


def test_an_opt_out_set_in_the_admin_is_recorded_as_staff(staff):
    contact = ContactFactory(name="Ana", tags=["vip"])
    form = {
        "wa_id": contact.wa_id,
        "bsuid": "",
        "name": "Ana",
        "language": "",
        "tags": '["vip"]',
        "notes": "",
        "opted_out": "on",
    }

    response = staff.post(f"/admin/conversations/contact/{contact.pk}/change/", form)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.opted_out, contact.opt_out_source, contact.opted_out_at is not None) == (
        True,
        "staff",
        True,
    )


def test_an_invalid_wa_id_is_refused_in_the_admin(staff):
    contact = ContactFactory()
    form = {"wa_id": "12ab", "bsuid": "", "name": "", "language": "", "tags": "[]", "notes": ""}

    response = staff.post(f"/admin/conversations/contact/{contact.pk}/change/", form)

    assert response.status_code == 200  # the form again, with the error
    assert Contact.objects.get(pk=contact.pk).wa_id == contact.wa_id


def test_the_queue_actions_cancel_and_retry_through_the_services(
    staff, tasks_captured, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory()
    pending = outbound_message(conversation=conversation)
    sent = outbound_message(conversation=conversation, send_state=Message.SendState.SENT)
    failed = outbound_message(conversation=conversation, send_state=Message.SendState.FAILED)

    with django_capture_on_commit_callbacks(execute=True):
        staff.post(
            "/admin/conversations/message/",
            {"action": "cancel_sending", "_selected_action": [pending.pk, sent.pk]},
        )
        staff.post("/admin/conversations/message/", {"action": "retry_now", "_selected_action": [failed.pk]})

    states = dict(Message.objects.values_list("pk", "send_state"))
    assert states == {pending.pk: "cancelled", sent.pk: "sent", failed.pk: "retry"}
    assert tasks_captured.ids("outbound.number_send") == [failed.channel_id]  # its number's sender is woken
