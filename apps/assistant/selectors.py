"""Reads for the assistant: the business profile and its knowledge.

Reads a door makes take the workspace (as in `apps.conversations.selectors`): lists hold that
workspace's rows only and `knowledge_get` answers NotFound alike for a missing id and another
workspace's. `knowledge_version` and `active_chunks` take the id: they feed the retrieval index, which
is cached per workspace id, on the reply path of every inbound message, where only the id is at hand
and loading the workspace would be one more query per reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from apps.accounts.models import Workspace
from apps.assistant.models import BusinessProfile, KnowledgeChunk, KnowledgeEntry, ModelPull
from chatbot.exceptions import NotFound


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: int
    entry_id: int
    ordinal: int
    title: str
    kind: str
    language: str
    text: str
    terms: str = ""
    terms_version: int = 0


def knowledge_version(*, workspace_id: int) -> int:
    """0 while the workspace has no profile (and so has never had knowledge written through services)."""
    version = (
        BusinessProfile.objects.filter(workspace_id=workspace_id)
        .values_list("knowledge_version", flat=True)
        .first()
    )
    return version or 0


def _active(workspace_id: int) -> QuerySet[KnowledgeChunk]:
    return KnowledgeChunk.objects.filter(workspace_id=workspace_id, entry__is_active=True)


def _rows(chunks: QuerySet[KnowledgeChunk]) -> list[ChunkRow]:
    rows = chunks.order_by("entry_id", "ordinal").values_list(
        "pk", "entry_id", "ordinal", "entry__title", "entry__kind", "entry__language", "text", "terms",
        "terms_version",
    )  # fmt: skip
    return [ChunkRow(*row) for row in rows]


def active_chunks(*, workspace_id: int) -> list[ChunkRow]:
    return _rows(_active(workspace_id))


def active_chunk_ids(*, workspace_id: int) -> list[int]:
    return list(_active(workspace_id).values_list("pk", flat=True))


def chunks_by_id(*, workspace_id: int, ids: list[int]) -> list[ChunkRow]:
    return _rows(_active(workspace_id).filter(pk__in=ids)) if ids else []


def knowledge_list(
    *, workspace: Workspace, kind: str = "", q: str = "", language: str = ""
) -> QuerySet[KnowledgeEntry]:
    entries = KnowledgeEntry.objects.filter(workspace=workspace)
    if kind:
        entries = entries.filter(kind=kind)
    if language:
        entries = entries.filter(language__iexact=language)
    if q:
        entries = entries.filter(Q(title__icontains=q) | Q(content__icontains=q))
    return entries.annotate(chunk_count=Count("chunks")).order_by("-updated_at", "-pk")


def knowledge_get(*, workspace: Workspace, pk: int) -> KnowledgeEntry:
    """Raises NotFound alike for a missing id and another workspace's."""
    entry = knowledge_list(workspace=workspace).filter(pk=pk).first()
    if entry is None:
        raise NotFound("Not found.")
    return entry


def knowledge_languages(*, workspace: Workspace) -> list[str]:
    """The languages the workspace's entries are written in (lower case, sorted), for a filter."""
    found = KnowledgeEntry.objects.filter(workspace=workspace).exclude(language="")
    return sorted({language.lower() for language in found.values_list("language", flat=True).distinct()})


def model_pulls(*, workspace: Workspace, kind: str = ModelPull.Kind.PULL) -> QuerySet[ModelPull]:
    """The workspace's model downloads into Ollama (or loads into LM Studio), newest first."""
    return ModelPull.objects.filter(workspace=workspace, kind=kind).order_by("-updated_at", "-pk")[:50]
