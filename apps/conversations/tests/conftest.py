"""The accounts fixture (clients logged in with a role) for the API tests here; `workspace` is suite-wide."""

from apps.accounts.tests.conftest import member_client

__all__ = ["member_client"]
