from __future__ import annotations

import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.assistant import selectors, services
from apps.assistant.models import ModelPull
from chatbot.exceptions import NotFound

pytestmark = pytest.mark.django_db


def test_knowledge_reads_are_the_workspaces_own():
    mine, other = WorkspaceFactory.create(), WorkspaceFactory.create()
    kept = services.knowledge_create(workspace_id=mine.pk, title="Horario", content="De 8 a 20.")
    theirs = services.knowledge_create(workspace_id=other.pk, title="Horario", content="De 9 a 14.")

    assert [entry.pk for entry in selectors.knowledge_list(workspace=mine)] == [kept.pk]
    assert selectors.knowledge_get(workspace=mine, pk=kept.pk).content == "De 8 a 20."
    with pytest.raises(NotFound) as other_tenant:
        selectors.knowledge_get(workspace=mine, pk=theirs.pk)
    with pytest.raises(NotFound) as missing:
        selectors.knowledge_get(workspace=mine, pk=theirs.pk + 1000)
    assert str(other_tenant.value) == str(missing.value)  # existence does not leak


def test_model_pulls_are_the_workspaces_own_of_the_kind_asked():
    mine, other = WorkspaceFactory.create(), WorkspaceFactory.create()
    pull = ModelPull.objects.create(workspace=mine, model="qwen2.5:3b")
    load = ModelPull.objects.create(workspace=mine, model="qwen2.5:3b", kind=ModelPull.Kind.LOAD)
    ModelPull.objects.create(workspace=other, model="qwen2.5:3b")

    assert [row.pk for row in selectors.model_pulls(workspace=mine)] == [pull.pk]
    assert [row.pk for row in selectors.model_pulls(workspace=mine, kind=ModelPull.Kind.LOAD)] == [load.pk]
