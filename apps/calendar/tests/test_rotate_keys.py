from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from apps.calendar.models import Connection
from apps.calendar.tests.factories import ConnectionFactory
from chatbot import crypto


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    crypto._fernet.cache_clear()
    yield old, new
    crypto._fernet.cache_clear()


@pytest.mark.django_db
def test_rotate_keys_covers_calendar_tokens(keys, settings):
    old, new = keys
    connection = ConnectionFactory(token='{"refresh_token": "1//r"}')
    settings.FERNET_KEYS = [new, old]
    crypto._fernet.cache_clear()
    out = StringIO()

    call_command("rotate_keys", stdout=out)

    settings.FERNET_KEYS = [new]
    crypto._fernet.cache_clear()
    assert Connection.objects.get(pk=connection.pk).token == '{"refresh_token": "1//r"}'
    assert "calendar.Connection: 1 rows re-encrypted" in out.getvalue()
    assert "calendar.PendingAuthorization: 0 rows re-encrypted" in out.getvalue()
