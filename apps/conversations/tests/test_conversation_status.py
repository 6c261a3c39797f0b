"""Conversation status is a guarded state machine: every move is a conditional UPDATE, so a move
decided on a stale read is refused, and a close is never undone (issue 11, item 3)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.conversations.events import InboundMessage
from apps.conversations.models import Conversation, Message
from apps.conversations.services import actions, inbound
from apps.conversations.services.ingest import inbound_store
from apps.conversations.services.status import TRANSITIONS, Move, conversation_move
from apps.conversations.tests.factories import ConversationFactory
from apps.live.models import LiveEvent
from chatbot.exceptions import Conflict

C = Conversation.Status

pytestmark = pytest.mark.usefixtures("tasks_captured")


def _status(conversation: Conversation) -> str:
    return Conversation.objects.values_list("status", flat=True).get(pk=conversation.pk)


EXPECTED = {
    # move: (the statuses it starts from, where it ends)
    Move.TAKEOVER: ({C.OPEN, C.PENDING_HUMAN, C.HUMAN}, C.HUMAN),
    Move.HANDBACK: ({C.PENDING_HUMAN, C.HUMAN}, C.OPEN),
    Move.IDLE_HANDBACK: ({C.HUMAN}, C.OPEN),
    Move.CLOSE: ({C.OPEN, C.PENDING_HUMAN, C.HUMAN}, C.CLOSED),
    Move.CUSTOMER_HANDOFF: ({C.OPEN}, C.PENDING_HUMAN),
    Move.MODEL_HANDOFF: ({C.OPEN}, C.PENDING_HUMAN),
    Move.ASSISTANT_OFF: ({C.OPEN}, C.PENDING_HUMAN),
    Move.REPLY_FAILED: ({C.OPEN}, C.PENDING_HUMAN),
    Move.SET_ASIDE: ({C.OPEN}, C.PENDING_HUMAN),
    Move.ALERT_HANDOFF: ({C.OPEN}, C.PENDING_HUMAN),
    Move.REOPEN: ({C.CLOSED}, C.OPEN),
}


def test_the_table_holds_every_move_and_only_a_reopen_leaves_closed():
    assert {move: (set(start), end) for move, (start, end) in TRANSITIONS.items()} == EXPECTED


@pytest.mark.django_db
@pytest.mark.parametrize("start", list(C))
@pytest.mark.parametrize("move", list(Move))
def test_each_move_happens_from_its_allowed_statuses_only(move, start):
    conversation = ConversationFactory(status=start)
    allowed, end = EXPECTED[move]
    events_before = LiveEvent.objects.count()

    moved = conversation_move(conversation=conversation, move=move)

    assert moved is (start in allowed)
    assert _status(conversation) == (end if moved else start)
    assert conversation.status == _status(conversation)
    # Screens hear of a move that happened, and of nothing else.
    assert LiveEvent.objects.count() - events_before == (1 if moved else 0)


@pytest.mark.django_db
def test_a_refused_move_reads_the_status_the_database_holds():
    given = ConversationFactory(status=C.OPEN)
    stale = Conversation.objects.get(pk=given.pk)
    actions.conversation_close(conversation=given, user=None)

    moved = conversation_move(conversation=stale, move=Move.CUSTOMER_HANDOFF)

    assert (moved, stale.status, _status(given)) == (False, C.CLOSED, C.CLOSED)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["takeover", "handback", "reply"])
def test_a_stale_copy_cannot_undo_a_close(action):
    """Given two screens holding the same conversation, one closes it; the other's take-over,
    hand-back or reply (on its copy read before the close) is refused and the close stands."""
    agent = UserFactory()
    conversation = ConversationFactory(status=C.PENDING_HUMAN)
    stale = Conversation.objects.get(pk=conversation.pk)
    actions.conversation_close(conversation=conversation, user=agent)
    closed_at = Conversation.objects.get(pk=conversation.pk).closed_at

    with pytest.raises(Conflict) as refused:
        if action == "takeover":
            actions.conversation_takeover(conversation=stale, user=agent)
        elif action == "handback":
            actions.conversation_handback(conversation=stale, user=agent)
        else:
            actions.conversation_reply(conversation=stale, user=agent, body="Hola")

    after = Conversation.objects.get(pk=conversation.pk)
    assert refused.value.code == "conversation_closed"
    assert (after.status, after.closed_at, after.assignee_id) == (C.CLOSED, closed_at, None)
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()


@pytest.mark.django_db
def test_a_stale_idle_hand_back_does_not_take_the_conversation_from_an_agent_who_just_wrote():
    """The idle check runs on the database's human_activity_at, not on the copy read before the
    agent's reply."""
    agent = UserFactory()
    long_ago = timezone.now() - timedelta(hours=2)
    conversation = ConversationFactory(status=C.HUMAN, assignee=agent, human_activity_at=long_ago)
    stale = Conversation.objects.get(pk=conversation.pk)
    actions.conversation_reply(conversation=conversation, user=agent, body="Sigo aquí")
    idle_since = timezone.now() - timedelta(minutes=30)

    moved = conversation_move(
        conversation=stale,
        move=Move.IDLE_HANDBACK,
        where=Q(human_activity_at__lte=idle_since),
        assignee=None,
    )

    after = Conversation.objects.get(pk=conversation.pk)
    assert moved is False
    assert (after.status, after.assignee_id) == (C.HUMAN, agent.pk)


@pytest.mark.django_db
def test_agent_reply_takes_an_open_conversation_and_keeps_an_assigned_one():
    first, second = UserFactory(), UserFactory()
    conversation = ConversationFactory(status=C.OPEN)

    actions.conversation_reply(conversation=conversation, user=first, body="Hola")
    actions.conversation_reply(conversation=conversation, user=second, body="Y yo")

    after = Conversation.objects.get(pk=conversation.pk)
    assert (after.status, after.assignee_id) == (C.HUMAN, first.pk)


# --- races on PostgreSQL: two threads, two connections -----------------------------------------

ROUNDS = 15


def _in_thread(target, errors: list[BaseException]):
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)
        finally:
            connection.close()

    return threading.Thread(target=run)


@pytest.mark.usefixtures("postgres")
@pytest.mark.django_db(transaction=True)
def test_close_racing_a_takeover_always_ends_closed():
    """Given two people acting at the same moment, each on the conversation they loaded (as the
    API's view does), the close is never undone: the take-over either lands first and is then
    closed, or is refused."""
    agent = UserFactory()
    outcomes: list[str] = []
    for _ in range(ROUNDS):
        conversation = ConversationFactory(status=C.OPEN)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def close(pk: int = conversation.pk, barrier: threading.Barrier = barrier) -> None:
            loaded = Conversation.objects.get(pk=pk)
            barrier.wait()
            actions.conversation_close(conversation=loaded, user=agent)

        def takeover(pk: int = conversation.pk, barrier: threading.Barrier = barrier) -> None:
            loaded = Conversation.objects.get(pk=pk)
            barrier.wait()
            try:
                actions.conversation_takeover(conversation=loaded, user=agent)
                outcomes.append("taken")
            except Conflict:
                outcomes.append("refused")

        threads = [_in_thread(close, errors), _in_thread(takeover, errors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        after = Conversation.objects.get(pk=conversation.pk)
        assert errors == []
        assert after.status == C.CLOSED
        assert after.closed_at is not None
    assert len(outcomes) == ROUNDS


def _store(channel, body: str, wa_id: str) -> int:
    item = InboundMessage(
        wamid=f"wamid.race.{wa_id}.{body}",
        type="text",
        timestamp=timezone.now(),
        from_wa_id=wa_id,
        from_bsuid="",
        from_name="Ana",
        body=body,
        raw={"type": "text", "text": {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    return message_id


@pytest.mark.usefixtures("postgres")
@pytest.mark.django_db(transaction=True)
def test_a_close_while_a_customer_message_is_processed_is_not_undone(monkeypatch):
    """Given a customer asking for a person while staff close the conversation: the close waits
    for the message being processed (the row is locked), then closes; the hand-off does not
    reopen it. On the old code the close landed in between and the hand-off wrote pending_human
    over it."""
    conversation = ConversationFactory(status=C.OPEN)
    wa_id = conversation.contact.wa_id
    message_id = _store(conversation.channel, "quiero hablar con un agente", wa_id)
    read, closed = threading.Event(), threading.Event()
    real_live_for = inbound.conversation_live_for

    def read_then_pause(**kwargs):
        live = real_live_for(**kwargs)
        read.set()  # the conversation is read; everything decided on it follows
        closed.wait(timeout=1.5)  # a close that does not wait for this message lands here
        return live

    monkeypatch.setattr(inbound, "conversation_live_for", read_then_pause)
    errors: list[BaseException] = []
    outcome: list[str] = []

    def process() -> None:
        outcome.append(inbound.inbound_message_process(message_id=message_id))

    def close() -> None:
        read.wait(timeout=10)
        actions.conversation_close(conversation=Conversation.objects.get(pk=conversation.pk), user=None)
        closed.set()

    threads = [_in_thread(process, errors), _in_thread(close, errors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    after = Conversation.objects.get(pk=conversation.pk)
    message = Message.objects.get(pk=message_id)
    assert errors == []
    assert outcome == ["handoff"]
    assert message.conversation_id == conversation.pk  # processed before the close, in that order
    assert (after.status, after.closed_at is not None) == (C.CLOSED, True)
    assert not Conversation.objects.filter(contact=conversation.contact).exclude(status=C.CLOSED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_customer_message_after_the_reopen_window_opens_a_new_conversation(settings):
    settings.CONVERSATION_REOPEN_MINUTES = 0
    conversation = ConversationFactory(status=C.HUMAN)
    actions.conversation_close(conversation=conversation, user=None)
    message_id = _store(conversation.channel, "hola otra vez", conversation.contact.wa_id)

    inbound.inbound_message_process(message_id=message_id)

    message = Message.objects.get(pk=message_id)
    assert _status(conversation) == C.CLOSED
    assert message.conversation_id != conversation.pk
    assert _status(message.conversation) == C.OPEN


@pytest.mark.django_db
def test_a_customer_message_within_the_reopen_window_reopens_the_closed_conversation(settings):
    settings.CONVERSATION_REOPEN_MINUTES = 60
    conversation = ConversationFactory(status=C.HUMAN)
    actions.conversation_close(conversation=conversation, user=None)
    message_id = _store(conversation.channel, "una cosa más", conversation.contact.wa_id)

    inbound.inbound_message_process(message_id=message_id)

    conversation.refresh_from_db()
    assert Message.objects.get(pk=message_id).conversation_id == conversation.pk
    assert (conversation.status, conversation.closed_at, conversation.assignee_id) == (C.OPEN, None, None)


@pytest.mark.django_db
def test_a_conversation_closed_longer_ago_than_the_window_stays_closed(settings):
    settings.CONVERSATION_REOPEN_MINUTES = 60
    conversation = ConversationFactory(status=C.HUMAN)
    actions.conversation_close(conversation=conversation, user=None)
    Conversation.objects.filter(pk=conversation.pk).update(closed_at=timezone.now() - timedelta(minutes=61))
    message_id = _store(conversation.channel, "hola otra vez", conversation.contact.wa_id)

    inbound.inbound_message_process(message_id=message_id)

    assert _status(conversation) == C.CLOSED
    assert Message.objects.get(pk=message_id).conversation_id != conversation.pk


@pytest.mark.django_db
def test_the_first_move_to_a_person_is_kept_as_handed_at_through_a_handback_and_a_second_handoff():
    conversation = ConversationFactory.create()
    before = timezone.now()

    assert conversation_move(conversation=conversation, move=Move.CUSTOMER_HANDOFF)
    first = Conversation.objects.values_list("handed_at", flat=True).get(pk=conversation.pk)
    assert first is not None and before <= first <= timezone.now()
    assert conversation.handed_at == first

    assert conversation_move(conversation=conversation, move=Move.HANDBACK)
    assert conversation_move(conversation=conversation, move=Move.TAKEOVER)
    assert conversation_move(conversation=conversation, move=Move.CLOSE)

    assert Conversation.objects.values_list("handed_at", flat=True).get(pk=conversation.pk) == first


@pytest.mark.django_db
def test_a_conversation_the_bot_keeps_has_no_handed_at():
    conversation = ConversationFactory.create()

    assert conversation_move(conversation=conversation, move=Move.CLOSE)

    assert Conversation.objects.values_list("handed_at", flat=True).get(pk=conversation.pk) is None
