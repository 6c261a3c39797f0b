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
    answers: list[tuple[int, dict]] = []

    def refresh() -> None:
        try:
            barrier.wait()
            response = APIClient().post("/api/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One refresh wins the claim; the others are re-use, which revokes the login. Whether the winner
    # read its login before or after that revocation is a race: it gets a new pair (200) or 401.
    statuses = sorted(status for status, _ in answers)
    assert statuses in ([200, 401, 401, 401], [401, 401, 401, 401])
    assert LoginSession.objects.get(user=membership.user).revoked_reason == "refresh_reuse"
    # Either way nothing issued in the race works any more.
    for status, body in answers:
        if status == 200:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
            assert client.get("/api/auth/me").status_code == 401
            again = APIClient().post("/api/auth/refresh", {"refresh": body["refresh"]}, format="json")
            assert again.status_code == 401
