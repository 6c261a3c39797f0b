"""Turn handling: the bot's reply to a customer turn, through the real assistant and the LLM stand-in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory, WorkspaceFactory
from apps.assistant import knowledge
from apps.assistant.models import ReplyUsage
from apps.conversations.events import InboundMessage
from apps.conversations.models import Contact, Conversation, Message
from apps.conversations.services import actions, replies
from apps.conversations.services.inbound import inbound_message_process
from apps.conversations.services.ingest import inbound_store
from apps.whatsapp.models import Channel

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _isolated(tasks_captured):
    knowledge.cache_clear()
    yield
    knowledge.cache_clear()


def scheduled(tasks) -> list[tuple]:
    """The reply tasks asked for, as (args, countdown), in order."""
    return [(call.args, call.countdown) for call in tasks.of("llm.reply_generate")]


@pytest.fixture
def channel():
    return Channel.objects.create(workspace=WorkspaceFactory.create(), kind="cloud", phone_number_id="3003")


_ids = iter(range(10**6))


def customer_says(channel, body):
    item = InboundMessage(
        wamid=f"wamid.r.{next(_ids)}",
        type="text",
        timestamp=timezone.now(),
        from_wa_id="5215550200",
        from_name="Pedro",
        body=body,
        raw={"type": "text", "text": {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])
    inbound_message_process(message_id=message_id)
    return Message.objects.get(pk=message_id)


def bot_messages():
    return list(Message.objects.filter(direction="out", author=Message.Author.BOT).order_by("pk"))


def test_a_customer_turn_is_answered_by_the_configured_provider(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Abrimos de 9 a 18 h."
    message = customer_says(channel, "¿A qué hora abren?")

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    [reply] = bot_messages()
    assert result == "replied"
    assert (reply.body, reply.send_state, reply.dedupe_key) == (
        "Abrimos de 9 a 18 h.",
        "pending",
        f"reply:{message.pk}",
    )
    assert ReplyUsage.objects.get().provider == "openai_compatible"


def test_a_lone_message_is_scheduled_after_commit_with_the_short_first_wait(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = customer_says(channel, "hola")

    assert scheduled(tasks_captured) == [((message.conversation_id, message.pk), 0.3)]


def test_with_no_debounce_the_reply_task_is_queued_without_a_countdown(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    # A countdown, even 0, makes Celery hold the task on the worker's ETA timer (bench (d): debounce 0)
    from apps.assistant.services import assistant_settings_get_or_create

    assistant = assistant_settings_get_or_create(workspace_id=channel.workspace_id)
    assistant.debounce_seconds = 0
    assistant.save()

    with django_capture_on_commit_callbacks(execute=True):
        message = customer_says(channel, "hola")

    assert scheduled(tasks_captured) == [((message.conversation_id, message.pk), None)]


def test_a_message_following_an_unanswered_one_waits_the_debounce_for_the_rest_of_the_burst(
    channel, tasks_captured, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = customer_says(channel, "hola")
        second = customer_says(channel, "quería preguntar")

    assert [countdown for _, countdown in scheduled(tasks_captured)] == [0.3, 2.0]
    assert [args for args, _ in scheduled(tasks_captured)] == [
        (first.conversation_id, first.pk),
        (second.conversation_id, second.pk),
    ]


def test_a_burst_never_waits_past_its_cap_after_the_turns_first_message(
    channel, tasks_captured, django_capture_on_commit_callbacks, settings
):
    settings.REPLY_BURST_MAX_WAIT = 6.0
    first = customer_says(channel, "hola")
    Message.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(seconds=5.5))
    second = customer_says(channel, "sigo escribiendo")
    Message.objects.filter(pk=second.pk).update(created_at=timezone.now() - timedelta(seconds=0.5))
    tasks_captured.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        customer_says(channel, "y otra cosa")

    [(_, countdown)] = scheduled(tasks_captured)
    assert 0.0 < countdown <= 0.5  # 6 s after the first message, not 2 s more


def test_a_message_after_the_last_one_was_answered_is_lone_again(
    channel, tasks_captured, django_capture_on_commit_callbacks, llm_standin, standin_providers
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    first = customer_says(channel, "hola")
    replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk)
    tasks_captured.calls.clear()

    with django_capture_on_commit_callbacks(execute=True):
        customer_says(channel, "¿y los domingos?")

    assert [countdown for _, countdown in scheduled(tasks_captured)] == [0.3]


def test_running_the_reply_task_twice_gives_one_reply(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    message = customer_says(channel, "hola")

    first = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
    second = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert (first, second) == ("replied", "already_replied")
    assert len(bot_messages()) == 1
    assert len(llm_standin.chat_requests()) == 1


def test_a_burst_of_messages_is_answered_once_with_all_of_it(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    first = customer_says(channel, "hola")
    customer_says(channel, "quería preguntar")
    last = customer_says(channel, "¿tienen envío a domicilio?")

    early = replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk)
    final = replies.reply_generate(conversation_id=last.conversation_id, message_id=last.pk)

    assert (early, final) == ("superseded", "replied")
    assert len(bot_messages()) == 1
    [request] = llm_standin.chat_requests()
    user_turns = [m["content"] for m in request.messages if m["role"] == "user"]
    assert user_turns == ["hola\nquería preguntar\n¿tienen envío a domicilio?"]


def test_earlier_turns_go_to_the_model_as_history(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "¡Hola Pedro!"
    first = customer_says(channel, "hola")
    replies.reply_generate(conversation_id=first.conversation_id, message_id=first.pk)
    second = customer_says(channel, "¿y los domingos?")

    replies.reply_generate(conversation_id=second.conversation_id, message_id=second.pk)

    turns = [
        (m["role"], m["content"]) for m in llm_standin.chat_requests()[-1].messages if m["role"] != "system"
    ]
    assert turns == [("user", "hola"), ("assistant", "¡Hola Pedro!"), ("user", "¿y los domingos?")]


@pytest.mark.parametrize(
    ("body", "stored", "expected"),
    [
        ("ok 👍", "en", "en"),  # the message tells no language: the contact's stored one
        ("¿Hacéis tartas por encargo?", "en", "es"),  # the message's own language comes first
        ("Do you make cakes to order?", "es", "en"),
    ],
)
def test_the_model_is_given_the_disclosure_in_the_replys_language_only(
    channel, llm_standin, standin_providers, body, stored, expected
):
    from apps.assistant.prompt import default_disclosure
    from apps.assistant.services import profile_get_or_create

    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Sí."
    message = customer_says(channel, body)
    Contact.objects.filter(pk=message.contact_id).update(language=stored)

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert result == "replied"
    [request] = llm_standin.chat_requests()
    system = request.messages[0]["content"]
    name = profile_get_or_create(workspace_id=channel.workspace_id).name
    other = "es" if expected == "en" else "en"
    assert default_disclosure(business_name=name, language=expected) in system
    assert default_disclosure(business_name=name, language=other) not in system


def test_the_next_provider_answers_when_the_first_fails(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai", "lmstudio"], provider_timeout_seconds=2)
    llm_standin.fail_next(status=500, model="openai-model")
    llm_standin.answer = "Respuesta del segundo"
    message = customer_says(channel, "hola")

    replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert [r.model for r in llm_standin.chat_requests()] == ["openai-model", "lmstudio-model"]
    assert bot_messages()[0].body == "Respuesta del segundo"
    assert ReplyUsage.objects.get().provider == "lmstudio"


def test_when_every_provider_fails_the_offline_responder_hands_over_to_a_person(
    channel, llm_standin, standin_providers
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.fail_next(5, status=503)
    message = customer_says(channel, "necesito cambiar mi pedido 1234")

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    [reply] = bot_messages()
    assert result == "handoff"
    assert Conversation.objects.get().status == Conversation.Status.PENDING_HUMAN
    assert "persona" in reply.body.lower() or "equipo" in reply.body.lower()
    assert ReplyUsage.objects.get().provider == "offline"


def test_the_model_can_pass_the_conversation_to_a_person(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Entiendo, te paso con una persona del equipo.\n[HANDOFF]"
    message = customer_says(channel, "quiero poner una reclamación")

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
    later = customer_says(channel, "¿hola?")

    [reply] = bot_messages()
    assert result == "handoff"
    assert reply.body == "Entiendo, te paso con una persona del equipo."
    assert Conversation.objects.get().status == Conversation.Status.PENDING_HUMAN
    assert Message.objects.get(pk=later.pk).conversation.status == Conversation.Status.PENDING_HUMAN
    assert ReplyUsage.objects.get().provider == "openai_compatible"


def test_a_provider_stalling_past_the_reply_budget_ends_with_a_person(
    channel, llm_standin, standin_providers
):
    standin_providers(
        channel.workspace_id, ["openai_compatible"], reply_budget_seconds=0.5, provider_timeout_seconds=5
    )
    llm_standin.stall(3)
    message = customer_says(channel, "necesito cambiar mi pedido 1234")

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    [reply] = bot_messages()
    assert result == "handoff"
    assert Conversation.objects.get().status == Conversation.Status.PENDING_HUMAN
    assert "persona" in reply.body.lower()
    assert ReplyUsage.objects.get().error == "reply budget exhausted"


def test_no_reply_when_a_person_took_the_conversation_meanwhile(
    channel, llm_standin, standin_providers, monkeypatch
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    message = customer_says(channel, "hola")
    from apps.assistant import reply as assistant_reply

    real = assistant_reply.generate_reply

    def takeover_while_thinking(request):
        actions.conversation_takeover(conversation=Conversation.objects.get(), user=UserFactory.create())
        return real(request)

    monkeypatch.setattr(assistant_reply, "generate_reply", takeover_while_thinking)

    result = replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    assert result == "not_open"
    assert bot_messages() == []


def test_a_long_answer_goes_out_as_several_messages_cut_at_sentences(channel, llm_standin, standin_providers):
    standin_providers(channel.workspace_id, ["openai_compatible"], max_tokens=2000)
    sentence = "Nuestro horario de atención es de lunes a viernes de nueve a dieciocho horas. "
    llm_standin.answer = (sentence * 30).strip()
    message = customer_says(channel, "horario")

    replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    rows = bot_messages()
    assert len(rows) >= 3
    assert all(len(row.body) <= 1000 and row.body.endswith(".") for row in rows)
    assert " ".join(row.body for row in rows) == llm_standin.answer


@pytest.fixture(params=["embedded", "redis"])
def reply_limit(request, settings, tmp_path):
    """Three bot replies per customer per minute, on fresh limiter state (files, or Redis)."""
    settings.INBOUND_REPLY_RATE = "3/60"
    if request.param == "embedded":
        settings.REDIS_URL, settings.DATA_DIR = "", tmp_path
        return
    request.getfixturevalue("redis_url")
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    for key in client.scan_iter("ratelimit:reply:*"):
        client.delete(key)


def test_a_flooding_customer_is_stored_in_full_but_answered_at_the_set_pace(
    channel,
    llm_standin,
    standin_providers,
    reply_limit,
    tasks_captured,
    settings,
    django_capture_on_commit_callbacks,
):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    outcomes = []
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(5):  # five turns in a row, each one asking for its reply at once
            message = customer_says(channel, f"pregunta {n}")
            outcomes.append(
                replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)
            )

    assert outcomes == ["replied", "replied", "replied", "paced", "paced"]
    assert Message.objects.filter(direction="in").count() == 5  # nothing the customer wrote is dropped
    assert len(bot_messages()) == 3
    # The paced turn is scheduled again for when the window has room (about a minute here) ...
    args, countdown = scheduled(tasks_captured)[-1]
    assert args == (message.conversation_id, message.pk) and 55 <= countdown <= 60
    # ... and when it runs, one reply answers everything since the last one.
    settings.INBOUND_REPLY_RATE = "100000/60"
    assert replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk) == "replied"
    user_turns = [m["content"] for m in llm_standin.chat_requests()[-1].messages if m["role"] == "user"]
    assert user_turns[-1] == "pregunta 3\npregunta 4"


def test_the_pace_is_per_customer(channel, llm_standin, standin_providers, reply_limit):
    standin_providers(channel.workspace_id, ["openai_compatible"])
    for n in range(3):
        message = customer_says(channel, f"pregunta {n}")
        replies.reply_generate(conversation_id=message.conversation_id, message_id=message.pk)

    item = InboundMessage(
        wamid="wamid.other.1",
        type="text",
        timestamp=timezone.now(),
        from_wa_id="5215550999",
        from_name="Lucía",
        body="hola",
        raw={"type": "text", "text": {"body": "hola"}},
    )
    [other_id] = inbound_store(channel=channel, messages=[item])
    inbound_message_process(message_id=other_id)
    other = Message.objects.get(pk=other_id)

    assert replies.reply_generate(conversation_id=other.conversation_id, message_id=other.pk) == "replied"


def test_the_sweeper_answers_a_turn_whose_reply_task_was_lost(
    channel, llm_standin, standin_providers, tasks_captured
):
    """The broker lost the reply task (e.g. Redis restarted): the database still shows a customer
    turn with nothing after it, and the sweeper asks for its reply, once."""
    from datetime import timedelta

    from apps.conversations.services.sweeper import sweep

    standin_providers(channel.workspace_id, ["openai_compatible"])
    lost = customer_says(channel, "¿Hacen envíos?")
    three_minutes_ago = timezone.now() - timedelta(minutes=3)
    Message.objects.filter(pk=lost.pk).update(created_at=three_minutes_ago)

    first = sweep(processing_timeout=timedelta(minutes=10))
    result = replies.reply_generate(conversation_id=lost.conversation_id, message_id=lost.pk)
    again = sweep(processing_timeout=timedelta(minutes=10))

    swept = [call.args for call in tasks_captured.of("llm.reply_generate")]
    assert (first["turns"], swept[0], result) == (1, (lost.conversation_id, lost.pk), "replied")
    assert again["turns"] == 0 and len(swept) == 1


def test_the_sweeper_leaves_fresh_answered_human_silent_and_stale_turns_alone(channel):
    from datetime import timedelta

    from apps.conversations.services.sweeper import TURN_HORIZON, turns_unanswered

    old = timezone.now() - timedelta(minutes=3)

    def turn(wa_id, body="hola", *, at=old, answered=False, status="open"):
        item = InboundMessage(
            wamid=f"wamid.s.{next(_ids)}",
            type="text" if body else "sticker",
            timestamp=timezone.now(),
            from_wa_id=wa_id,
            body=body,
            raw={},
        )
        [message_id] = inbound_store(channel=channel, messages=[item])
        inbound_message_process(message_id=message_id)
        message = Message.objects.get(pk=message_id)
        Message.objects.filter(pk=message_id).update(created_at=at)
        Conversation.objects.filter(pk=message.conversation_id).update(status=status)
        if answered:
            replies.message_enqueue(
                conversation=message.conversation, author=Message.Author.BOT, body="¡Hola!"
            )
        return message

    waiting = turn("5215550301")
    turn("5215550302", at=timezone.now())  # the reply task still has time
    turn("5215550303", answered=True)
    turn("5215550304", status="human")  # a person has it
    turn("5215550305", body="")  # a sticker alone needs no answer
    turn("5215550306", at=timezone.now() - TURN_HORIZON - timedelta(minutes=1))  # too late for the bot

    assert turns_unanswered() == [(waiting.conversation_id, waiting.pk)]


def test_the_sweeper_finds_a_lost_turn_that_the_reply_to_the_turn_before_it_sorts_after(
    channel, llm_standin, standin_providers
):
    """The fault test's flake (tests/faults/test_redis_restart.py): the reply to "hola" was written
    after "¿abren hoy?" arrived, and the broker lost the second turn's reply task. That reply sorts
    after the turn but answers an earlier one: the turn is still the sweeper's, and gets its reply."""
    from datetime import timedelta

    from apps.conversations.services.sweeper import turns_unanswered

    standin_providers(channel.workspace_id, ["openai_compatible"])
    first = customer_says(channel, "hola")
    lost = customer_says(channel, "¿abren hoy?")  # its reply task never runs
    replies.message_enqueue(
        conversation=first.conversation,
        author=Message.Author.BOT,
        body="¡Hola!",
        dedupe_key=f"reply:{first.pk}",
    )
    Message.objects.filter(pk__in=[first.pk, lost.pk]).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )

    found = turns_unanswered()
    outcome = replies.reply_generate(conversation_id=lost.conversation_id, message_id=lost.pk)

    assert found == [(lost.conversation_id, lost.pk)]
    assert outcome == "replied" and turns_unanswered() == []
    assert Message.objects.filter(dedupe_key=f"reply:{lost.pk}").exists()


def test_a_reaction_after_a_lost_turn_neither_hides_it_nor_is_swept_itself(channel):
    from datetime import timedelta

    from apps.conversations.services.sweeper import turns_unanswered

    lost = customer_says(channel, "¿hacéis envíos?")  # its reply task never runs
    item = InboundMessage(
        wamid=f"wamid.r.{next(_ids)}",
        type="reaction",
        timestamp=timezone.now(),
        from_wa_id="5215550200",
        body="👍",
        reply_to_wamid=lost.wamid,
        raw={"type": "reaction", "reaction": {"message_id": lost.wamid, "emoji": "👍"}},
    )
    [reaction_id] = inbound_store(channel=channel, messages=[item])
    inbound_message_process(message_id=reaction_id)
    Message.objects.filter(pk__in=[lost.pk, reaction_id]).update(
        created_at=timezone.now() - timedelta(minutes=3)
    )

    assert Message.objects.get(pk=reaction_id).handled_as == "reaction"
    assert turns_unanswered() == [(lost.conversation_id, lost.pk)]


def test_with_the_assistant_switched_off_the_customer_waits_for_a_person(channel, tasks_captured):
    from apps.assistant.models import AssistantSettings

    AssistantSettings.objects.create(workspace=channel.workspace, enabled=False)

    message = customer_says(channel, "hola, ¿hay alguien?")

    assert Conversation.objects.get(pk=message.conversation_id).status == Conversation.Status.PENDING_HUMAN
    assert scheduled(tasks_captured) == [] and bot_messages() == []


def test_a_message_whose_task_was_lost_is_answered_with_the_next_one(channel, llm_standin, standin_providers):
    """The broker lost message 1's task; message 2's processing takes message 1 first, so the turn
    the model answers holds both, and the sweeper later finds nothing left to do for message 1."""
    standin_providers(channel.workspace_id, ["openai_compatible"])

    def stored(body):
        item = InboundMessage(
            wamid=f"wamid.lost.{next(_ids)}",
            type="text",
            timestamp=timezone.now(),
            from_wa_id="5215550777",
            body=body,
            raw={"type": "text", "text": {"body": body}},
        )
        [message_id] = inbound_store(channel=channel, messages=[item])
        return message_id

    first = stored("¿tienen talla M?")  # its processing task never ran
    second = stored("¿y en azul?")

    processed = inbound_message_process(message_id=second)
    message = Message.objects.get(pk=second)
    outcome = replies.reply_generate(conversation_id=message.conversation_id, message_id=second)
    late = inbound_message_process(message_id=first)  # the sweeper's re-enqueue, later

    assert (processed, outcome, late) == ("bot", "replied", "skipped")
    assert Message.objects.get(pk=first).conversation_id == message.conversation_id
    [request] = llm_standin.chat_requests()
    user_turns = [m["content"] for m in request.messages if m["role"] == "user"]
    assert user_turns == ["¿tienen talla M?\n¿y en azul?"]
    assert len(bot_messages()) == 1


def test_a_message_stored_while_the_previous_reply_was_written_is_answered_next(
    channel, llm_standin, standin_providers
):
    """The reply to "hola" was queued after "¿abren hoy?" arrived (it sorts after it) but never saw
    it: the next turn must still carry it to the model."""
    standin_providers(channel.workspace_id, ["openai_compatible"])
    first = customer_says(channel, "hola")
    customer_says(channel, "¿abren hoy?")
    replies.message_enqueue(  # the reply to "hola", written while the second message came in
        conversation=first.conversation,
        author=Message.Author.BOT,
        body="¡Hola!",
        dedupe_key=f"reply:{first.pk}",
    )
    third = customer_says(channel, "¿y mañana?")

    assert replies.reply_generate(conversation_id=third.conversation_id, message_id=third.pk) == "replied"

    turns = [
        (m["role"], m["content"]) for m in llm_standin.chat_requests()[-1].messages if m["role"] != "system"
    ]
    assert turns == [("user", "hola"), ("assistant", "¡Hola!"), ("user", "¿abren hoy?\n¿y mañana?")]
