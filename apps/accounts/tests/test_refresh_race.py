from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.accounts.models import LoginSession
from apps.accounts.tests.conftest import login
from apps.accounts.tests.factories import MembershipFactory


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_let_only_one_through_and_revoke_the_login(postgres):
    membership = MembershipFactory()
    tokens = login(APIClient(), membership.user.username)
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def refresh() -> None:
        try:
            barrier.wait()
            response = APIClient().post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 401, 401, 401]
    assert LoginSession.objects.get(user=membership.user).revoked_reason == "refresh_reuse"
