"""Issue 13 items 1, 2, 5, 10: what follows a reaction, a handled keyword, a number shared by BSUID, and
a hand-off. Message shapes as Meta sends them (pywa's tests/data/updates/message.json, callback_button.json)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.assistant import knowledge
from apps.conversations.events import InboundMessage
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import actions, replies
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.sandbox.demo import demo_seed
from apps.whatsapp.models import Channel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]
_ids = iter(range(10**6))


@pytest.fixture
def channel(workspace):
    knowledge.cache_clear()
    demo_seed(workspace=workspace)
    return Channel.objects.create(workspace=workspace, kind="cloud", phone_number_id="kinds-1")


def says(channel, kind="text", body="", *, wa_id="972987654321", bsuid="", reply_to="", raw=None) -> Message:
    """Store and process one message as the webhook and the worker would; the reply is not generated."""
    item = InboundMessage(
        wamid=f"wamid.kinds.{next(_ids)}",
        type=kind,
        timestamp=timezone.now(),
        from_wa_id=wa_id,
        from_bsuid=bsuid,
        body=body,
        reply_to_wamid=reply_to,
        raw=raw or {"type": kind, kind: {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    inbound_message_process(message_id=message_id)
    return Message.objects.get(pk=message_id)


def answer(message: Message) -> str:
    assert message.conversation_id is not None
    return replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)


def bot_said(conversation_id: int) -> list[str]:
    return list(
        Message.objects.filter(conversation_id=conversation_id, author=Message.Author.BOT)
        .order_by("pk")
        .values_list("body", flat=True)
    )


def test_a_reaction_inside_a_burst_is_neither_merged_nor_answered_and_the_question_still_is(channel):
    question = says(channel, body="¿Dónde estáis?")
    reaction = says(
        channel,
        "reaction",
        "😮",
        reply_to=question.wamid,
        raw={"type": "reaction", "reaction": {"message_id": question.wamid, "emoji": "😮"}},
    )

    assert answer(question) == "replied"
    assert reaction.handled_as == "reaction" and reaction.reply_to_wamid == question.wamid
    assert reaction.conversation_id == question.conversation_id
    assert bot_said(question.conversation_id) == [
        "Estamos en la Calle del Trigo 12, 28004 Madrid (metro Tribunal)."
    ]


def test_a_pressed_unsubscribe_button_is_confirmed_once_and_never_answered_again(channel):
    button = says(
        channel,
        "button",
        "Unsubscribe",
        raw={"type": "button", "button": {"payload": "unsubscribe", "text": "Unsubscribe"}},
    )
    question = says(channel, body="Where are you?")

    assert answer(question) == "replied"
    assert button.handled_as == "keyword"
    assert Contact.objects.get().opted_out is True
    assert bot_said(question.conversation_id) == [
        "We are at Calle del Trigo 12, 28004 Madrid (Tribunal metro)."
    ]


def test_a_campaigns_stop_promotions_button_opts_out_by_its_words_but_free_text_must_be_the_word_alone(
    channel,
):
    """Meta's marketing templates carry a "Stop promotions" quick reply; a business writes "Darme de baja"."""
    from apps.conversations.models import ConsentRecord

    says(channel, body="no quiero darme de baja", wa_id="34600000011")  # free text: not an opt-out
    tapped = says(
        channel,
        "button",
        "Stop promotions",
        wa_id="34600000012",
        raw={"type": "button", "button": {"payload": "Stop promotions", "text": "Stop promotions"}},
    )
    spanish = says(
        channel,
        "button",
        "Darme de baja",
        wa_id="34600000013",
        raw={"type": "button", "button": {"payload": "BAJA", "text": "Darme de baja"}},
    )

    opted = dict(Contact.objects.values_list("wa_id", "opted_out"))
    assert opted == {"34600000011": False, "34600000012": True, "34600000013": True}
    assert tapped.handled_as == spanish.handled_as == "keyword"
    assert set(ConsentRecord.objects.values_list("source", flat=True)) == {"button"}


def test_a_new_number_with_a_known_bsuid_moves_the_contact_so_replies_go_to_the_number_that_wrote(channel):
    first = says(channel, body="hola", wa_id="34600000001", bsuid="US.1")

    later = says(channel, body="hola otra vez", wa_id="34600000002", bsuid="US.1")

    contact = Contact.objects.get()
    assert (contact.wa_id, contact.bsuid) == ("34600000002", "US.1")
    assert later.contact_id == first.contact_id == contact.pk


def test_a_number_of_another_contact_with_a_known_bsuid_is_filed_under_the_numbers_contact(channel):
    says(channel, body="hola", wa_id="34600000001", bsuid="US.1")
    other = says(channel, body="hola", wa_id="34600000002")

    message = says(channel, body="¿abrís hoy?", wa_id="34600000002", bsuid="US.1")

    assert message.contact_id == other.contact_id
    assert Contact.objects.get(pk=other.contact_id).wa_id == "34600000002"
    assert Contact.objects.get(bsuid="US.1").wa_id == "34600000001"  # not merged, not moved


def test_while_waiting_for_a_person_the_bot_answers_what_it_knows_and_stays_silent_on_the_rest(channel):
    handed = says(channel, body="Quiero 40 cruasanes para una boda")
    assert answer(handed) == "handoff"
    conversation = Conversation.objects.get()
    assert conversation.status == Conversation.Status.PENDING_HUMAN

    known = says(channel, body="¿Dónde estáis?")
    assert answer(known) == "replied"
    unknown = says(channel, body="¿Tenéis catering para empresas?")
    assert answer(unknown) == "waiting_for_person"

    said = bot_said(conversation.pk)
    assert said[-1] == (
        "Estamos en la Calle del Trigo 12, 28004 Madrid (metro Tribunal).\n\n"
        "Además, una persona del equipo te responderá en breve."
    )
    assert len(said) == 2  # the hand-off, the answer; nothing for the unknown question
    assert Conversation.objects.get().status == Conversation.Status.PENDING_HUMAN
    assert Message.objects.get(pk=unknown.pk).handled_as == "to_person"


def test_once_a_person_has_taken_over_the_bot_is_silent(channel):
    says(channel, body="hola")
    actions.conversation_takeover(conversation=Conversation.objects.get(), user=UserFactory.create())

    message = says(channel, body="¿Dónde estáis?")

    assert answer(message) == "not_open"
    assert bot_said(message.conversation_id) == []


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("audio", {"type": "audio", "audio": {"id": "1", "voice": True}}, "Todavía no puedo escuchar audios"),
        ("image", {"type": "image", "image": {"id": "1"}}, "Todavía no puedo ver imágenes"),
        ("unsupported", {"type": "unsupported", "errors": [{"code": 131051}]}, "Todavía no puedo leer"),
        ("sticker", {"type": "sticker", "sticker": {"id": "1", "animated": False}}, "😊"),
    ],
)
def test_a_message_the_bot_cannot_read_is_answered_in_the_customers_language(channel, kind, raw, expected):
    answer(says(channel, body="hola"))
    message = says(channel, kind, raw=raw)

    assert answer(message) == "replied"
    assert bot_said(message.conversation_id)[-1].startswith(expected)
    assert Conversation.objects.get().status == Conversation.Status.OPEN


def test_an_order_goes_to_a_person_with_its_note_kept(channel):
    raw = {
        "type": "order",
        "order": {
            "catalog_id": "1",
            "text": "para el sábado",
            "product_items": [{"product_retailer_id": "TARTA", "quantity": 1}],
        },
    }
    from apps.whatsapp.payloads import message_body

    message = says(channel, "order", message_body(raw)[0], raw=raw)

    assert message.body == "para el sábado\n1 x TARTA"
    assert message.handled_as == "to_person"
    assert Conversation.objects.get().status == Conversation.Status.PENDING_HUMAN
