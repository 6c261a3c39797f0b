"""Real webhook payload shapes (replay/*.json: pywa's test data, Meta's reference examples, Meta's group
messages reference) replayed through the signed webhook endpoint, inbound processing and the bot's
reply with no LLM key (the offline responder), against the demo bakery. Each case's `expect`:

- answered: the bot (or a keyword's confirmation) replied, and the conversation stays with the bot;
- to_person: the conversation waits for a person, and the customer was told so;
- reaction: stored in the conversation, on the message it reacts to, and not answered;
- keyword: an opt-out/opt-in word, confirmed once, never later treated as a question;
- group: stored as a group message (with its sender), outside private conversations, not answered;
- number_changed / stored: a system message, stored and not answered (a number change moves the contact);
- amended: an edit or revoke changed the original message instead of adding a row;
- no_message: statuses, preferences and account events: 200, and no message row.

Every delivery is posted twice: the second changes nothing (stored once)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from apps.assistant import knowledge
from apps.conversations.events import InboundMessage
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services.ingest import inbound_store
from apps.sandbox.demo import demo_seed
from apps.whatsapp.models import Channel
from apps.whatsapp.signature import sign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_captured")]

REPLAY = Path(__file__).parent / "replay"
NUMBER, SECRET = "106540352242922", "replay-app-secret"
CASES = [
    pytest.param(case, id=f"{path.stem}:{case['source'].split(' ')[1 if path.stem == 'pywa' else 0][-60:]}")
    for path in sorted(REPLAY.glob("*.json"))
    for case in json.loads(path.read_text())["cases"]
]


def _addressed_to_us(delivery: dict) -> dict:
    delivery = copy.deepcopy(delivery)
    for entry in delivery["entry"]:
        for change in entry["changes"]:
            change["value"].setdefault("metadata", {})["phone_number_id"] = NUMBER
    return delivery


def _post(client, body: bytes):
    return client.post(
        "/webhooks/whatsapp/",
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=sign(body, SECRET),
    )


def _messages(delivery: dict) -> list[dict]:
    return [m for e in delivery["entry"] for c in e["changes"] for m in c["value"].get("messages", [])]


def _prepare(channel: Channel, delivery: dict, expect: str) -> None:
    """What must exist before the delivery: the message an edit or revoke changes, the contact whose
    number changes."""
    for message in _messages(delivery):
        if expect == "amended":
            original = message[message["type"]]["original_message_id"]
            inbound_store(
                channel=channel,
                messages=[
                    InboundMessage(
                        wamid=original,
                        type="text",
                        timestamp=_now(),
                        from_wa_id="972987654321",
                        body="before",
                    )
                ],
            )
        if expect == "number_changed":
            Contact.objects.create(workspace=channel.workspace, wa_id=message["from"], opted_out=True)


def _now():
    from django.utils import timezone

    return timezone.now()


def _outcome(before: int) -> str:
    inbound = Message.objects.filter(direction=Message.Direction.INBOUND)
    if inbound.count() == before:
        return "no_message" if before == 0 else "amended"
    message = inbound.order_by("-pk").first()
    assert message is not None and message.processed_at is not None, "stored but never processed"
    if message.handled_as in ("group", "reaction", "keyword"):
        return message.handled_as
    if message.handled_as == "system":
        moved = Contact.objects.filter(wa_id="972912345678").first()
        # The contact moved with its consent (it had opted out under the old number).
        return "number_changed" if moved is not None and moved.opted_out else "stored"
    conversation = message.conversation
    assert conversation is not None
    replies = Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND)
    assert replies.exists(), f"{message.type} ended in silence"
    if conversation.status == Conversation.Status.PENDING_HUMAN:
        return "to_person"
    assert conversation.status == Conversation.Status.OPEN
    return "answered"


@pytest.mark.parametrize("case", CASES)
def test_a_real_payload_shape_has_the_outcome_a_person_would_expect(
    case, client, workspace, tasks_captured, django_capture_on_commit_callbacks, settings
):
    settings.INBOUND_REPLY_RATE = "1000/60"
    knowledge.cache_clear()
    demo_seed(workspace=workspace)
    channel = Channel.objects.create(
        workspace=workspace, kind="cloud", phone_number_id=NUMBER, app_secret=SECRET, verify_token="v"
    )
    tasks_captured.run("inbound.message_process", "inbound.messages_process", "llm.reply_generate")
    delivery = _addressed_to_us(case["delivery"])
    _prepare(channel, delivery, case["expect"])
    before = Message.objects.filter(direction=Message.Direction.INBOUND).count()
    body = json.dumps(delivery).encode()

    with django_capture_on_commit_callbacks(execute=True):
        first = _post(client, body)
    rows = Message.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        again = _post(client, body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert Message.objects.count() == rows  # a re-delivery stores and sends nothing more
    assert _outcome(before) == case["expect"], case["source"]
