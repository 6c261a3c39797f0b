"""Retrieval over a workspace's knowledge: tokenizing, BM25 ranking, and when an FAQ is a sure answer.

Pure reads. The index of a workspace is built from its active chunks on first use and kept per process,
keyed by (workspace_id, knowledge_version); every knowledge edit bumps the version, and the next query
patches the cached index to the chunks now active (reading only the changed ones) rather than building
it again. Chunks carry their terms as stored when written, and one thread of a process builds or patches
while the others asking for the same index wait for it instead of making their own copies.
"""

from __future__ import annotations

import ctypes
import math
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_SPANISH

from apps.assistant import selectors
from apps.assistant.language import detect_language, fold
from apps.assistant.models import KnowledgeEntry
from apps.assistant.types import Passage

STEMMERS: dict[str, str] = {
    "es": "spanish",
    "en": "english",
    "pt": "portuguese",
    "fr": "french",
    "it": "italian",
    "de": "german",
    "ca": "catalan",
}
MAX_CACHED_INDEXES = 64
# Version of what `stored_terms` computes: bump it with any change to tokenizing (stop words, stemming,
# the title's weight), and chunks stored under an older one are tokenized again at build.
TERMS_VERSION = 1

# Confidence rule of `confident_answer` (see its docstring).
MIN_QUERY_COVERAGE = 0.6
MIN_MARGIN = 1.25

_WORD = re.compile(r"[^\W_]+")
# Words that carry a lot of meaning in a business's FAQ although generic lists call them stop words.
# "Where" carries the whole of "¿Dónde estáis?": without it the FAQ's own title finds nothing.
_KEEP = frozenset(
    {"sentido", "sentidos", "sentida", "sentidas", "siente", "estado", "estados", "off", "donde", "where"}
)
# Greetings and politeness: customers wrap every question in them, and they must not decide a match.
_FILLERS = frozenset(
    {
        "hola", "buenas", "buenos", "buen", "dia", "tardes", "noches", "gracias", "saludos", "favor",
        "porfa", "quisiera", "queria", "quiero", "gustaria", "saber", "podria", "podrian", "puedo",
        "pueden", "puede", "usted", "ustedes", "vale", "ok", "okay", "hello", "hi", "hey", "thanks",
        "thank", "please", "pls", "would", "could", "like", "want", "know", "can", "ask", "tell",
        "exactamente", "exactly", "entonces", "then", "also", "tambien", "much", "many", "need", "mucho",
        "necesito",
    }
)  # fmt: skip

STOP_WORDS: frozenset[str] = frozenset(
    fold(word) for word in (*STOPWORDS_SPANISH, *STOPWORDS_EN_PLUS, *_FILLERS) if word not in _KEEP
)


# --- tokens --------------------------------------------------------------------------------------
_stemmers = threading.local()  # a PyStemmer object must not be shared between threads


@lru_cache(maxsize=65536)
def _stem(language: str, word: str) -> str:
    stemmer = getattr(_stemmers, language, None)
    if stemmer is None:
        stemmer = Stemmer.Stemmer(STEMMERS[language])
        setattr(_stemmers, language, stemmer)
    # Stemmed before folding: the Spanish rules know accented suffixes (-ción, -ían).
    return fold(stemmer.stemWord(word))


def content_words(text: str) -> list[str]:
    """Casefolded words that are not stop words (compared without accents)."""
    return [word for word in _WORD.findall(text.casefold()) if fold(word) not in STOP_WORDS]


def _word_stems(word: str, languages: tuple[str, ...]) -> list[str]:
    stems: list[str] = []
    for language in languages:
        stem = _stem(language, word) if language in STEMMERS else fold(word)
        if stem not in stems:
            stems.append(stem)
    return stems


def _languages(text: str, language: str) -> tuple[str, ...]:
    language = (language or detect_language(text)).lower()[:2]
    return (language,) if language else ("es", "en")


def tokenize(text: str, language: str = "") -> list[str]:
    """Search terms of `text`: casefolded, accents folded, punctuation and stop words (Spanish and
    English) dropped, stemmed for `language`.

    An empty `language` is detected from the text; when it cannot be, each word yields its Spanish
    stem and, when different, its English one.
    """
    languages = _languages(text, language)
    return [stem for word in content_words(text) for stem in _word_stems(word, languages)]


def _query_terms(query: str) -> list[str]:
    # A short question is where language detection fails; the stem of the wrong language rarely
    # exists in the index, so trying both costs little and finds the right one.
    terms = tokenize(query, "es") + tokenize(query, "en")
    return list(dict.fromkeys(terms))


# --- index ---------------------------------------------------------------------------------------
K1 = 1.2
B = 0.75
# Past this share of the base index changed since it was built, an edit rebuilds instead of patching.
REBUILD_SHARE = 0.2


@dataclass(frozen=True, slots=True)  # one per chunk, 50,000 in a large workspace: no __dict__ each
class _Doc:
    chunk_id: int
    entry_id: int
    ordinal: int
    title: str
    text: str
    kind: str


class _Index:
    """BM25 (Lucene's variant, k1 1.2, b 0.75) over a workspace's chunks, patched by edits.

    A base built at once in numpy (postings sorted by term: document slots and term frequencies), plus
    the chunks written since, kept apart in small postings lists, and a mask of the slots whose chunks
    are gone. Scores are computed at query time from the live counts (documents, lengths, document
    frequencies), so a patched index ranks exactly as one rebuilt from scratch. Never changed once
    built: an edit makes a new index that shares the base's arrays, so a reader never sees a half-patch.
    """

    def __init__(self, docs: list[_Doc], corpus: Iterable[list[str]]) -> None:
        """`corpus` (each doc's terms) is read once, as it comes: the terms of 50,000 chunks held as
        Python strings and ints at once were ten times the data indexed (bench/knowledge.py --memory)."""
        self.docs = docs
        self.slots = {doc.chunk_id: slot for slot, doc in enumerate(docs)}
        vocab: dict[str, int] = {}
        flat = array("q")  # term ids: 8 bytes each, where a list of ints costs ~36
        lengths = array("d")
        for terms in corpus:
            flat.extend([vocab.setdefault(term, len(vocab)) for term in terms])
            lengths.append(len(terms))
        self.vocab = vocab
        self.lengths = np.frombuffer(lengths, dtype=np.float64).copy()
        self.alive = np.ones(len(docs), dtype=bool)
        self.base = len(docs)
        if flat:
            width = max(len(docs), 1)
            keys = np.frombuffer(flat, dtype=np.int64) * width
            del flat
            keys += np.repeat(np.arange(len(docs), dtype=np.int64), self.lengths.astype(np.int64))
            pairs, counts = np.unique(keys, return_counts=True)
            del keys
            # Document slots and term frequencies fit 32 bits; frequencies become float64 when scored.
            self.post_docs = (pairs % width).astype(np.int32)
            self.post_tf = counts.astype(np.int32)
            self.indptr = np.searchsorted(pairs // width, np.arange(len(vocab) + 1))
        else:
            self.post_docs = np.zeros(0, dtype=np.int32)
            self.post_tf = np.zeros(0, dtype=np.int32)
            self.indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        self.added: dict[str, list[tuple[int, int]]] = {}  # term -> (slot, tf) of chunks added since

    def patched(self, gone: set[int], new_docs: list[_Doc], new_corpus: list[list[str]]) -> _Index:
        """A new index: this one without the chunks `gone`, with `new_docs` (and their terms) added."""
        index = object.__new__(_Index)
        index.__dict__.update(self.__dict__)
        index.docs = [*self.docs, *new_docs]
        index.slots = dict(self.slots)
        index.alive = np.concatenate([self.alive, np.ones(len(new_docs), dtype=bool)])
        index.lengths = np.concatenate([self.lengths, [len(terms) for terms in new_corpus]])
        index.added = {term: list(postings) for term, postings in self.added.items()}
        for chunk_id in gone:
            index.alive[index.slots.pop(chunk_id)] = False
        for offset, (doc, terms) in enumerate(zip(new_docs, new_corpus, strict=True)):
            slot = len(self.docs) + offset
            index.slots[doc.chunk_id] = slot
            counts: dict[str, int] = {}
            for term in terms:
                counts[term] = counts.get(term, 0) + 1
            for term, tf in counts.items():
                index.added.setdefault(term, []).append((slot, tf))
        return index

    def churn(self) -> float:
        """The share of the base no longer as it was built (removed, or outnumbered by additions)."""
        return (int((~self.alive).sum()) + len(self.docs) - self.base) / max(self.base, 1)

    def _postings(self, term: str) -> tuple[Any, Any]:
        docs: Any = np.zeros(0, dtype=np.int64)
        tfs: Any = np.zeros(0, dtype=np.float64)
        term_id = self.vocab.get(term)
        if term_id is not None:
            docs = self.post_docs[self.indptr[term_id] : self.indptr[term_id + 1]].astype(np.int64)
            tfs = self.post_tf[self.indptr[term_id] : self.indptr[term_id + 1]].astype(np.float64)
        if term in self.added:
            more = np.array(self.added[term], dtype=np.int64)
            docs = np.concatenate([docs, more[:, 0]])
            tfs = np.concatenate([tfs, more[:, 1].astype(np.float64)])
        keep = self.alive[docs]
        return docs[keep], tfs[keep]

    def search(self, terms: list[str], k: int) -> list[Passage]:
        documents = int(self.alive.sum())
        if not documents or not terms or k <= 0:
            return []
        average = float(self.lengths[self.alive].sum()) / documents
        scores = np.zeros(len(self.docs), dtype=np.float64)
        for term in dict.fromkeys(terms):
            docs, tfs = self._postings(term)
            if not len(docs):
                continue
            idf = math.log(1 + (documents - len(docs) + 0.5) / (len(docs) + 0.5))
            scores[docs] += idf * tfs / (K1 * ((1 - B) + B * self.lengths[docs] / average) + tfs)
        passages = []
        for i in _top(scores, k, tie=lambda i: (self.docs[i].entry_id, self.docs[i].ordinal)):
            if float(scores[i]) <= 0:
                break
            doc = self.docs[i]
            passages.append(
                Passage(
                    entry_id=doc.entry_id,
                    title=doc.title,
                    text=doc.text.strip(),
                    score=round(float(scores[i]), 4),
                    kind=doc.kind,
                )
            )
        return passages


def _top(scores: Any, k: int, tie: Callable[[int], Any] = lambda i: i) -> list[int]:
    """Indexes of the `k` best scores, best first, ties by `tie` (the position by default): the same
    order as sorting every document, without sorting every document (30 of a warm query's 31 ms at
    50,000 FAQs went there)."""
    if len(scores) > k:
        kth = scores[np.argpartition(-scores, k - 1)[:k]].min()
        candidates = np.flatnonzero(scores >= kth)  # the k best and whatever ties the k-th
    else:
        candidates = np.arange(len(scores))
    return sorted((int(i) for i in candidates), key=lambda i: (-float(scores[i]), tie(i)))[:k]


def stored_terms(*, title: str, text: str, kind: str, language: str) -> str:
    """A chunk's search terms as stored with it (`KnowledgeChunk.terms`, under TERMS_VERSION)."""
    return " ".join(_document_terms(title=title, text=text, kind=kind, language=language))


def _document_terms(*, title: str, text: str, kind: str, language: str) -> list[str]:
    language = language or detect_language(f"{title}\n{text}")
    if kind == KnowledgeEntry.Kind.FAQ:
        # The question is what customers paraphrase; counting it twice lets it outweigh a long answer.
        return 2 * tokenize(title, language) + tokenize(text, language)
    return tokenize(title, language) + tokenize(text, language)


def _docs(chunks: list[selectors.ChunkRow]) -> tuple[list[_Doc], Iterable[list[str]]]:
    """The chunks as documents, and their terms as an iterator (read once, by _Index)."""
    docs = [
        _Doc(chunk.chunk_id, chunk.entry_id, chunk.ordinal, chunk.title, chunk.text, chunk.kind)
        for chunk in chunks
    ]

    def corpus() -> Iterable[list[str]]:
        for chunk in chunks:
            if chunk.terms_version == TERMS_VERSION:
                yield chunk.terms.split()
            else:  # written before its terms were stored, or under another tokenizer
                yield _document_terms(
                    title=chunk.title, text=chunk.text, kind=chunk.kind, language=chunk.language
                )

    return docs, corpus()


def build_index(*, workspace_id: int) -> _Index:
    index = _Index(*_docs(selectors.active_chunks(workspace_id=workspace_id)))
    _memory_give_back()
    return index


@lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to give back this way
        return None


def _memory_give_back() -> None:
    """Return the build's freed memory to the system: glibc keeps it in the process otherwise (at
    50,000 FAQs the worker's RSS grew 98 MB for an index of 43 MB; 30 MB with this,
    bench/knowledge.py --memory). A few milliseconds, once per full build."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def index_patch(index: _Index, *, workspace_id: int) -> _Index:
    """`index` brought up to the workspace's active chunks: the chunks gone are masked, the new ones
    read and added. An edit rewrites its entry's chunks (new ids), so the ids tell what changed."""
    now = set(selectors.active_chunk_ids(workspace_id=workspace_id))
    gone = set(index.slots) - now
    new = now - set(index.slots)
    docs, corpus = _docs(selectors.chunks_by_id(workspace_id=workspace_id, ids=sorted(new)))
    return index.patched(gone, docs, list(corpus))


_cache: OrderedDict[tuple[int, int], _Index] = OrderedDict()
_cache_lock = threading.Lock()
# The index being built for a key, and the lock its builder holds meanwhile: a thread that finds one
# waits on that lock, then reads the cache (eight threads of a worker used to build eight copies).
_building: dict[tuple[int, int], threading.Lock] = {}


def cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(key: tuple[int, int]) -> _Index | None:
    index = _cache.get(key)
    if index is not None:
        _cache.move_to_end(key)
    return index


def _index_for(workspace_id: int, version: int | None = None) -> _Index:
    # The version is read before the chunks: an index is never older than the version it is filed under.
    if version is None:
        version = selectors.knowledge_version(workspace_id=workspace_id)
    key = (workspace_id, version)
    while True:
        with _cache_lock:
            index = _cached(key)
            if index is not None:
                return index
            underway = _building.get(key)
            if underway is None:
                mine = _building[key] = threading.Lock()
                mine.acquire()
                break
        with underway:  # another thread builds it: wait, then look again (its build may have failed)
            pass
    try:
        with _cache_lock:
            previous = next(
                (cached for (ws, _), cached in reversed(_cache.items()) if ws == workspace_id), None
            )
        if previous is not None and previous.churn() < REBUILD_SHARE:
            index = index_patch(previous, workspace_id=workspace_id)
            if index.churn() >= REBUILD_SHARE:
                index = build_index(workspace_id=workspace_id)
        else:
            index = build_index(workspace_id=workspace_id)
        with _cache_lock:
            for stale in [cached for cached in _cache if cached[0] == workspace_id]:
                del _cache[stale]
            _cache[key] = index
            while len(_cache) > MAX_CACHED_INDEXES:
                _cache.popitem(last=False)
    finally:
        with _cache_lock:
            del _building[key]
        mine.release()
    return index


def retrieve(*, workspace_id: int, query: str, k: int = 4, version: int | None = None) -> list[Passage]:
    """The `k` passages of the workspace's active knowledge that best match `query`, best first.

    Passages that share no term with the query are never returned, so the list may be shorter or empty.
    `version`: the profile's knowledge_version when the caller has just read it (saves reading it again).
    """
    return _index_for(workspace_id, version).search(_query_terms(query), k)


# --- confident answers ---------------------------------------------------------------------------
def _stem_set(text: str) -> set[str]:
    return {stem for word in content_words(text) for stem in _word_stems(word, ("es", "en"))}


def _coverage(words: list[str], stems: set[str]) -> float:
    if not words:
        return 0.0
    found = sum(any(stem in stems for stem in _word_stems(word, ("es", "en"))) for word in words)
    return found / len(words)


def confident_answer(*, passages: list[Passage], query: str) -> Passage | None:
    """The best passage when it is an FAQ that clearly answers `query`, else None.

    Clearly means all of:
    - the best passage (`passages` come best first) is an FAQ with a positive score;
    - its score is at least MIN_MARGIN (1.25) times the runner-up's, so no other passage competes;
    - at least MIN_QUERY_COVERAGE (60 %) of the query's content words (stop words and greetings
      dropped) appear, stemmed in Spanish or English, in the FAQ's question or answer: a question about
      something else that shares one word with an FAQ ("do you deliver pizza from other restaurants")
      is not answered with it;
    - at least one of those words is in the FAQ's question, so an FAQ is not picked for words that
      only its answer mentions in passing.
    BM25 scores are not comparable between workspaces or queries, so the rule relies on their ratio
    and on word coverage, both of which are.
    """
    if not passages:
        return None
    best = passages[0]
    if best.kind != KnowledgeEntry.Kind.FAQ or best.score <= 0:
        return None
    if len(passages) > 1 and best.score < MIN_MARGIN * passages[1].score:
        return None
    words = content_words(query)
    if _coverage(words, _stem_set(f"{best.title}\n{best.text}")) < MIN_QUERY_COVERAGE:
        return None
    if _coverage(words, _stem_set(best.title)) == 0:
        return None
    return best
