"""The accounts fixtures (a workspace and clients logged in with a role) for the API tests here."""

from apps.accounts.tests.conftest import member_client, workspace

__all__ = ["member_client", "workspace"]
