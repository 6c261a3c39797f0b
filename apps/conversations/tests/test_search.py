"""The inbox search by message text (issue 20): PostgreSQL full text over one row of words per
conversation, kept by an indexer, with the messages after its cursor read directly. What a member
types finds the same conversations before and after the indexer has run."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.conversations import selectors
from apps.conversations.models import Contact, ConversationSearch, Message, SearchIndexCursor
from apps.conversations.services import search_index
from apps.conversations.tests.factories import ConversationFactory, MessageFactory
from apps.conversations.tests.test_growth_plans import plan_indexes
from apps.whatsapp.tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's full-text search; SQLite reads the messages (test_api_conversations.py)")


def found(workspace, q: str) -> set[int]:
    return set(selectors.conversation_list(workspace=workspace, user_id=0, q=q).values_list("pk", flat=True))


def index_everything() -> search_index.IndexRun:
    return search_index.search_index_update(now=timezone.now() + search_index.SETTLE + timedelta(seconds=1))


@pytest.fixture
def shop():
    channel = ChannelFactory()
    refund = MessageFactory(
        conversation__channel=channel, body="Quiero la devolución de mi pedido"
    ).conversation
    MessageFactory(conversation=refund, body="Gracias")
    refunds = MessageFactory(
        conversation__channel=channel, body="¿Cuántas devoluciones hacéis al mes?"
    ).conversation
    cake = MessageFactory(
        conversation__channel=channel, direction="out", author="bot", body="La tarta de queso cuesta 25 €"
    ).conversation
    number = MessageFactory(conversation__channel=channel, body="Llamadme al 612 345 678").conversation
    other_workspace = MessageFactory(body="devolución en otra empresa").conversation
    return {
        "workspace": channel.workspace,
        "refund": refund.pk,
        "refunds": refunds.pk,
        "cake": cake.pk,
        "number": number.pk,
        "other": other_workspace.pk,
    }


CASES = [
    # (what a member types, which conversations it finds)
    ("devolución", {"refund", "refunds"}),  # the Spanish stem covers the plural
    ("devoluciones", {"refund", "refunds"}),
    ("DEVOLUCION", {"refund", "refunds"}),  # no accent: the word as written, or what starts with it
    ("devol", {"refund", "refunds"}),  # the start of a word
    ("tarta queso", {"cake"}),  # every word, in any order, bot's messages too
    ("tarta devolución", set()),
    ("612", {"number"}),
    ("cuantas", {"refunds"}),
    ("order & !| :* <->", set()),  # tsquery's operators are not operators here
    ("¿?", set()),  # no word at all: nothing by text, and no error
]


@pytest.mark.parametrize(("q", "expected"), CASES)
def test_search_finds_the_same_conversations_before_and_after_indexing(shop, q, expected):
    SearchIndexCursor.objects.update_or_create(id=1, defaults={"last_message_id": 0, "backfill_below": 0})
    before = found(shop["workspace"], q)
    index_everything()
    assert ConversationSearch.objects.filter(workspace=shop["workspace"]).count() == 4
    after = found(shop["workspace"], q)

    assert before == after == {shop[name] for name in expected}


def test_a_message_stored_after_the_indexer_ran_is_found_at_once(shop):
    index_everything()
    cursor = SearchIndexCursor.objects.get()
    assert cursor.last_message_id == Message.objects.order_by("-pk").values_list("pk", flat=True)[0]

    late = MessageFactory(
        conversation__channel__workspace=shop["workspace"], body="Una devolución más"
    ).conversation

    assert found(shop["workspace"], "devolución") == {shop["refund"], shop["refunds"], late.pk}
    assert not ConversationSearch.objects.filter(conversation=late).exists()


def test_the_indexer_stops_before_messages_too_young_to_be_settled(shop):
    now = timezone.now()
    young = MessageFactory(conversation__channel__workspace=shop["workspace"], body="reembolso urgente")
    Message.objects.filter(pk=young.pk).update(created_at=now)
    Message.objects.exclude(pk=young.pk).update(created_at=now - timedelta(minutes=1))

    run = search_index.search_index_update(now=now)

    # A younger message's id may have been handed out before an older one's commit: stop short of it.
    assert SearchIndexCursor.objects.get().last_message_id == young.pk - 1
    assert run.messages == Message.objects.filter(pk__lt=young.pk).count()
    assert found(shop["workspace"], "reembolso") == {young.conversation_id}  # read directly meanwhile
    index_everything()
    assert SearchIndexCursor.objects.get().last_message_id == young.pk


def test_a_conversations_row_is_rewritten_only_for_words_it_had_not_used(shop):
    index_everything()
    refund = ConversationSearch.objects.get(conversation_id=shop["refund"])
    words = set(refund.document.replace("'", "").split())

    MessageFactory(conversation_id=shop["refund"], body="gracias, mi pedido")  # words it used already
    assert index_everything().conversations_written == 0

    MessageFactory(conversation_id=shop["refund"], body="¿y el reembolso?")
    assert index_everything().conversations_written == 1
    grown = set(
        ConversationSearch.objects.get(conversation_id=shop["refund"]).document.replace("'", "").split()
    )
    assert words < grown and "reembolso" in grown


def test_the_history_before_the_index_is_searched_directly_then_backfilled(shop):
    newest = Message.objects.order_by("-pk").values_list("pk", flat=True)[0]
    # As migration 0012 leaves a database that had messages: everything is history.
    SearchIndexCursor.objects.update_or_create(
        id=1, defaults={"last_message_id": newest, "backfill_below": newest + 1}
    )
    # Meanwhile the messages are read as before (a part of a word matches too).
    assert found(shop["workspace"], "evoluci") == {shop["refund"], shop["refunds"]}

    run = search_index.search_index_update(now=timezone.now())

    assert run.backfilled_ids == newest + 1 and SearchIndexCursor.objects.get().backfill_below == 0
    assert ConversationSearch.objects.count() == 5  # both workspaces
    assert found(shop["workspace"], "evoluci") == set()  # words now, not fragments
    assert found(shop["workspace"], "devoluciones") == {shop["refund"], shop["refunds"]}


def test_the_backfill_covers_every_id_across_steps(shop, monkeypatch):
    monkeypatch.setattr(search_index, "BACKFILL_IDS", 2)
    newest = Message.objects.order_by("-pk").values_list("pk", flat=True)[0]
    SearchIndexCursor.objects.update_or_create(
        id=1, defaults={"last_message_id": newest, "backfill_below": newest + 1}
    )

    search_index.search_index_update(now=timezone.now())

    assert ConversationSearch.objects.count() == 5
    assert found(shop["workspace"], "gracias") == {shop["refund"]}


def test_a_rebuild_forgets_the_words_and_indexes_the_history_again(shop):
    index_everything()
    Message.objects.filter(body__contains="612").update(body="número borrado")

    call_command("search_index", "--rebuild")

    assert found(shop["workspace"], "612") == set()
    assert found(shop["workspace"], "borrado") == {shop["number"]}
    assert SearchIndexCursor.objects.get().backfill_below == 0


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_holds_the_cursor_skips():
    MessageFactory(body="hola")
    SearchIndexCursor.objects.get_or_create(id=1)
    holding, release = threading.Event(), threading.Event()

    def first_run() -> None:
        with transaction.atomic():
            SearchIndexCursor.objects.select_for_update().get(id=1)
            holding.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=first_run)
    thread.start()
    holding.wait(10)
    try:
        run = index_everything()
    finally:
        release.set()
        thread.join()

    assert run.skipped and run.messages == 0
    assert index_everything().messages == 1


def test_the_search_reads_the_index_by_workspace_and_words(shop):
    index_everything()
    with CaptureQueriesContext(connection) as captured:
        list(selectors.conversation_list(workspace=shop["workspace"], user_id=0, q="devolución"))
    [sql] = [q["sql"] for q in captured.captured_queries if "conversations_conversationsearch" in q["sql"]]

    # The messages after the cursor are found by id range, not by reading the workspace's messages.
    assert plan_indexes(sql) >= {"conv_search_workspace_doc", "conv_msg_workspace_id"}


def test_names_and_numbers_are_found_through_their_trigram_index_accents_ignored(shop):
    lucia = ConversationFactory(
        channel__workspace=shop["workspace"], contact__name="Lucía Pérez", contact__wa_id="5215550001234"
    )
    shop_name = ConversationFactory(channel__workspace=shop["workspace"], contact__profile_name="LUCIA_shop")
    ConversationFactory(contact__name="Lucía of another workspace")

    assert found(shop["workspace"], "lucia") == {lucia.pk, shop_name.pk}
    assert found(shop["workspace"], "PÉREZ") == {lucia.pk}
    assert found(shop["workspace"], "+52155500") == {lucia.pk}
    assert found(shop["workspace"], "100%_") == set()  # LIKE's wildcards are plain characters

    # Enough contacts that reading the workspace's is dearer than the trigram index, as at scale.
    Contact.objects.bulk_create(
        Contact(workspace=shop["workspace"], wa_id=f"3490{n:07d}", name=f"Cliente {n}") for n in range(3000)
    )
    with connection.cursor() as cursor:
        # As autovacuum would have: new rows wait in the GIN index's pending list, which the planner prices.
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", ["conv_contact_search"])
        cursor.execute("ANALYZE conversations_contact")
    with CaptureQueriesContext(connection) as captured:
        list(selectors.conversation_list(workspace=shop["workspace"], user_id=0, q="lucia"))
    [sql] = [q["sql"] for q in captured.captured_queries if "chatbot_contact_key" in q["sql"]]
    assert "conv_contact_search" in plan_indexes(sql)


def test_the_lag_metric_tells_how_old_the_oldest_unread_message_is(shop):
    index_everything()
    assert selectors.search_index_lag() == (0.0, 0)

    late = MessageFactory(conversation__channel__workspace=shop["workspace"], body="hola")
    Message.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    seconds, history_left = selectors.search_index_lag()

    assert 90 <= seconds < 120 and history_left == 0


def test_a_customer_message_waiting_to_be_processed_holds_the_cursor_until_it_has_its_conversation():
    from apps.conversations.services.inbound import inbound_message_process

    channel = ChannelFactory()
    before = MessageFactory(conversation__channel=channel, body="primero")
    waiting = MessageFactory(
        channel=channel,
        workspace=channel.workspace,
        conversation=None,
        contact=None,
        direction="in",
        processed_at=None,
        from_wa_id="34600999888",
        body="¿Hacéis envíos a Canarias?",
    )
    after = MessageFactory(conversation__channel=channel, body="después")
    Message.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    index_everything()
    assert SearchIndexCursor.objects.get().last_message_id == before.pk  # not past the waiting one

    inbound_message_process(message_id=waiting.pk)
    index_everything()

    assert SearchIndexCursor.objects.get().last_message_id == after.pk
    conversation = Message.objects.get(pk=waiting.pk).conversation_id
    assert ConversationSearch.objects.filter(conversation_id=conversation).exists()
    assert found(channel.workspace, "canarias") == {conversation}


def test_a_straggler_no_longer_holds_the_cursor_and_is_indexed_when_processed(settings):
    from apps.conversations.services.inbound import inbound_message_process

    channel = ChannelFactory()
    straggler = MessageFactory(
        channel=channel,
        workspace=channel.workspace,
        conversation=None,
        contact=None,
        direction="in",
        processed_at=None,
        from_wa_id="34600999777",
        body="Pedido atrasado número 4471",
    )
    later = MessageFactory(conversation__channel=channel, body="otra cosa")
    Message.objects.filter(pk=straggler.pk).update(created_at=timezone.now() - timedelta(hours=2))

    index_everything()
    assert SearchIndexCursor.objects.get().last_message_id == later.pk  # went on without it

    inbound_message_process(message_id=straggler.pk)  # workers back: processed two hours late

    conversation = Message.objects.get(pk=straggler.pk).conversation_id
    document = ConversationSearch.objects.get(conversation_id=conversation).document
    assert "atrasado" in document and "4471" in document
