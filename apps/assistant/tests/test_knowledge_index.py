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


def _corpus(rng: random.Random, size: int) -> list[list[str]]:
    words = [f"w{n}" for n in range(60)]
    return [[rng.choice(words[: rng.randint(5, 60)]) for _ in range(rng.randint(1, 25))] for _ in range(size)]


def _docs(corpus: list[list[str]], first_id: int = 1) -> list[knowledge._Doc]:
    return [
        knowledge._Doc(first_id + n, first_id + n, 0, f"t{first_id + n}", "x", "faq")
        for n in range(len(corpus))
    ]


def _bm25s_ranking(corpus: list[list[str]], docs: list[knowledge._Doc], query: list[str], k: int):
    """The reference: bm25s, the library the index replaced (Lucene's BM25, k1 1.2, b 0.75)."""
    import bm25s

    model = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    model.index(corpus, show_progress=False)
    ids = model.get_tokens_ids(query)
    if not ids:
        return []
    scores = model.get_scores_from_ids(ids)
    order = sorted(range(len(docs)), key=lambda i: (-float(scores[i]), docs[i].entry_id))
    return [(docs[i].title, float(scores[i])) for i in order[:k] if float(scores[i]) > 0]


def _ranking(index: knowledge._Index, query: list[str], k: int):
    return [(p.title, p.score) for p in index.search(query, k)]


def _same(ours, reference) -> bool:
    return [t for t, _ in ours] == [t for t, _ in reference] and all(
        abs(a - b) < 1e-3 for (_, a), (_, b) in zip(ours, reference, strict=True)
    )


@pytest.mark.parametrize("seed", range(8))
def test_the_index_ranks_and_scores_as_bm25s_does(seed):
    rng = random.Random(seed)  # noqa: S311
    corpus = _corpus(rng, 300)
    docs = _docs(corpus)
    index = knowledge._Index(docs, corpus)
    for _ in range(20):
        query = [f"w{rng.randint(0, 70)}" for _ in range(rng.randint(1, 4))]
        query = list(dict.fromkeys(query))

        assert _same(_ranking(index, query, 5), _bm25s_ranking(corpus, docs, query, 5))


@pytest.mark.parametrize("seed", range(6))
def test_a_patched_index_ranks_exactly_as_one_rebuilt_from_scratch(seed):
    rng = random.Random(100 + seed)  # noqa: S311
    corpus = _corpus(rng, 200)
    docs = _docs(corpus)
    index = knowledge._Index(docs, corpus)
    # An edit: some chunks go (deleted, deactivated, or rewritten under new ids), new ones come.
    gone = set(rng.sample([doc.chunk_id for doc in docs], 15))
    added_corpus = _corpus(rng, 12)
    added = _docs(added_corpus, first_id=1000)
    patched = index.patched(gone, added, added_corpus)
    kept = [(doc, terms) for doc, terms in zip(docs, corpus, strict=True) if doc.chunk_id not in gone]
    rebuilt_docs = [doc for doc, _ in kept] + added
    rebuilt_corpus = [terms for _, terms in kept] + added_corpus
    rebuilt = knowledge._Index(rebuilt_docs, rebuilt_corpus)

    for _ in range(20):
        query = list(dict.fromkeys(f"w{rng.randint(0, 60)}" for _ in range(rng.randint(1, 4))))
        assert _same(_ranking(patched, query, 6), _ranking(rebuilt, query, 6))
    # The index patched from stays as it was: a thread still reading it is not disturbed.
    assert len(index.docs) == 200 and index.alive.all() and not index.added


def test_an_edit_patches_the_cached_index_reading_only_what_changed(bakery, django_assert_max_num_queries):  # noqa: F811
    for n in range(30):  # enough that one edit stays under REBUILD_SHARE (a small index is rebuilt)
        services.knowledge_create(workspace_id=bakery.pk, title=f"¿Producto {n}?", content=f"Sí, el {n}.")
    knowledge.cache_clear()
    assert (
        titles(knowledge.retrieve(workspace_id=bakery.pk, query="horario"))[0]
        == "¿Cuál es el horario de apertura?"
    )
    built = knowledge._cache[next(iter(knowledge._cache))]

    entry = services.knowledge_create(
        workspace_id=bakery.pk,
        title="¿Tenéis tartas de boda?",
        content="Sí, por encargo con un mes.",
        language="es",
    )
    hours = knowledge.selectors.KnowledgeEntry.objects.get(
        workspace=bakery, title="¿Cuál es el horario de apertura?"
    )
    services.knowledge_update(entry=hours, is_active=False)
    with django_assert_max_num_queries(3):  # the version, the chunk ids, the new chunks
        found = titles(knowledge.retrieve(workspace_id=bakery.pk, query="tartas de boda horario"))
    patched = knowledge._cache[next(iter(knowledge._cache))]

    assert found[0] == entry.title and "¿Cuál es el horario de apertura?" not in found
    assert patched is not built and patched.base == built.base  # patched, not rebuilt


def test_a_full_build_gives_its_freed_memory_back_to_the_system(bakery, monkeypatch):  # noqa: F811
    trims: list[int] = []
    monkeypatch.setattr(knowledge, "_malloc_trim", lambda: trims.append)

    index = knowledge.build_index(workspace_id=bakery.pk)

    assert index.base > 0 and trims == [0]  # glibc's malloc_trim(0), after the transient arrays are gone
    # The postings are stored compactly (32-bit) and scored in float64, as a rebuild ranks.
    assert index.post_docs.dtype == np.int32 and index.post_tf.dtype == np.int32
