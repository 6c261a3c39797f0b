from apps.accounts.tests.conftest import member_client

__all__ = ["member_client"]
