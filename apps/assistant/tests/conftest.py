from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.accounts.tests.conftest import member_client  # noqa: F401 - a fixture
from apps.assistant import knowledge


@pytest.fixture(autouse=True)
def _fresh_knowledge_indexes() -> Iterator[None]:
    # Test databases roll back, so a (workspace id, knowledge_version) pair can come back in the next test.
    knowledge.cache_clear()
    yield
    knowledge.cache_clear()
