from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from apps.accounts.tests.factories import WorkspaceFactory
from apps.whatsapp.models import Channel
from chatbot import crypto

pytestmark = pytest.mark.django_db


def raw_column(channel: Channel, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM whatsapp_channel WHERE id = %s", [channel.pk])  # noqa: S608
        return cursor.fetchone()[0]


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FERNET_KEYS = [old]
    crypto._fernet.cache_clear()
    yield old, new
    crypto._fernet.cache_clear()


def test_secrets_are_stored_encrypted_and_read_back_in_plain(keys):
    channel = Channel.objects.create(
        workspace=WorkspaceFactory.create(), access_token="EAAG-very-secret-token"
    )

    stored = raw_column(channel, "access_token")

    assert "EAAG-very-secret-token" not in stored
    assert Fernet(keys[0].encode()).decrypt(stored.encode()) == b"EAAG-very-secret-token"
    assert Channel.objects.get(pk=channel.pk).access_token == "EAAG-very-secret-token"
    assert raw_column(channel, "app_secret") == ""  # "not configured" stays visible


def test_rotate_keys_re_encrypts_with_the_new_first_key_so_the_old_one_can_go(keys, settings):
    old, new = keys
    channel = Channel.objects.create(
        workspace=WorkspaceFactory.create(), access_token="token-1", app_secret="s-1"
    )
    settings.FERNET_KEYS = [new, old]
    crypto._fernet.cache_clear()
    out = StringIO()

    call_command("rotate_keys", stdout=out)

    settings.FERNET_KEYS = [new]
    crypto._fernet.cache_clear()
    reloaded = Channel.objects.get(pk=channel.pk)
    assert (reloaded.access_token, reloaded.app_secret) == ("token-1", "s-1")
    assert "whatsapp.Channel: 1 rows re-encrypted" in out.getvalue()


def test_a_secret_unreadable_with_every_key_is_a_clear_error(keys, settings):
    channel = Channel.objects.create(workspace=WorkspaceFactory.create(), access_token="token-1")
    settings.FERNET_KEYS = [keys[1]]
    crypto._fernet.cache_clear()

    with pytest.raises(ImproperlyConfigured, match="cannot be decrypted with any key in FERNET_KEYS"):
        Channel.objects.get(pk=channel.pk)


def test_missing_keys_are_a_clear_error(settings):
    settings.FERNET_KEYS = []
    crypto._fernet.cache_clear()

    with pytest.raises(ImproperlyConfigured, match="FERNET_KEYS is not set"):
        crypto.encrypt("x")
    crypto._fernet.cache_clear()
