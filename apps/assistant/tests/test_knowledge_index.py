"""What keeps retrieval cheap as the knowledge grows (issue 20 item 1): terms stored with each chunk when
it is written, one build per process for an index many threads want, top-k without a full sort."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from apps.assistant import knowledge, services
from apps.assistant.models import KnowledgeChunk
from apps.assistant.tests.test_knowledge import bakery, titles  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_a_chunk_is_stored_with_its_search_terms(bakery):  # noqa: F811
    entry = services.knowledge_create(
        workspace_id=bakery.pk,
        title="¿Hacéis tartas de cumpleaños?",
        content="Sí, por encargo.",
        language="es",
    )
    [chunk] = KnowledgeChunk.objects.filter(entry=entry)

    assert chunk.terms_version == knowledge.TERMS_VERSION
    # The question counts twice (see _document_terms), the answer once; stemmed, folded, no stop words.
    assert chunk.terms.split() == 2 * knowledge.tokenize(entry.title, "es") + knowledge.tokenize(
        "Sí, por encargo.", "es"
    )
    assert "tart" in chunk.terms.split() and "encarg" in chunk.terms.split()


def test_the_index_reads_the_stored_terms_and_tokenizes_chunks_stored_without_them(bakery):  # noqa: F811
    knowledge.cache_clear()
    hours = KnowledgeChunk.objects.get(
        entry__workspace=bakery, entry__title="¿Cuál es el horario de apertura?"
    )
    # Stored terms are what the index knows: a term only they hold finds the entry ...
    KnowledgeChunk.objects.filter(pk=hours.pk).update(terms="zumbido")
    # ... and a chunk stored under an older tokenizer is tokenized from its text again.
    KnowledgeChunk.objects.filter(entry__workspace=bakery, entry__title="Can I pay by card?").update(
        terms="", terms_version=0
    )

    assert titles(knowledge.retrieve(workspace_id=bakery.pk, query="zumbido")) == [
        "¿Cuál es el horario de apertura?"
    ]
    assert titles(knowledge.retrieve(workspace_id=bakery.pk, query="pay by card"))[0] == "Can I pay by card?"


@pytest.mark.parametrize("k", [1, 3, 10, 50])
def test_top_k_is_the_order_of_a_full_sort_ties_included(k):
    rng = random.Random(k)  # noqa: S311
    for _ in range(50):
        scores = np.array(
            [rng.choice([0.0, 0.5, 1.0, 1.5, rng.random()]) for _ in range(40)], dtype=np.float32
        )
        expected = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]

        assert knowledge._top(scores, k) == expected


@pytest.mark.django_db(transaction=True)
def test_threads_wanting_the_same_new_index_wait_for_one_build(bakery, monkeypatch):  # noqa: F811
    knowledge.cache_clear()
    builds = []
    real_build = knowledge.build_index

    def slow_build(*, workspace_id):
        builds.append(threading.get_ident())
        time.sleep(0.3)  # long enough that every thread arrives while it runs
        return real_build(workspace_id=workspace_id)

    monkeypatch.setattr(knowledge, "build_index", slow_build)
    version = knowledge.selectors.knowledge_version(workspace_id=bakery.pk)
    found: list[list[str]] = []
    start = threading.Barrier(6)

    def reply():
        start.wait()
        found.append(titles(knowledge.retrieve(workspace_id=bakery.pk, query="horario", version=version)))

    threads = [threading.Thread(target=reply) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(builds) == 1
    assert len(found) == 6 and all(
        result and result[0] == "¿Cuál es el horario de apertura?" for result in found
    )


@pytest.mark.django_db(transaction=True)
def test_when_the_build_fails_a_waiting_thread_builds_it_itself(bakery, monkeypatch):  # noqa: F811
    knowledge.cache_clear()
    real_build = knowledge.build_index
    calls = []
    first_started = threading.Event()

    def failing_once(*, workspace_id):
        calls.append(1)
        if len(calls) == 1:
            first_started.set()
            time.sleep(0.2)
            raise RuntimeError("database went away")
        return real_build(workspace_id=workspace_id)

    monkeypatch.setattr(knowledge, "build_index", failing_once)
    version = knowledge.selectors.knowledge_version(workspace_id=bakery.pk)
    outcome: dict[str, object] = {}

    def first():
        try:
            knowledge.retrieve(workspace_id=bakery.pk, query="horario", version=version)
        except RuntimeError as exc:
            outcome["first"] = exc

    def second():
        first_started.wait()
        outcome["second"] = titles(
            knowledge.retrieve(workspace_id=bakery.pk, query="horario", version=version)
        )

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert isinstance(outcome["first"], RuntimeError)
    assert outcome["second"][0] == "¿Cuál es el horario de apertura?"
    assert len(calls) == 2
