from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.accounts.tests.conftest import member_client
from apps.alerts.rules import rules_forget

__all__ = ["member_client"]


@pytest.fixture(autouse=True)
def _compiled_rules_forgotten() -> Iterator[None]:
    # Rules made with the ORM in a test do not bump the shared version; start each test afresh.
    rules_forget()
    yield
    rules_forget()
