from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import Membership, Role, User, Workspace

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_bootstrap_twice_makes_one_admin_owner_and_never_prints_the_password(settings):
    settings.ADMIN_PASSWORD = "a-very-long-admin-passphrase"

    first = bootstrap()
    password_hash = User.objects.get(username="admin").password
    second = bootstrap()

    admin = User.objects.get(username="admin")
    assert Workspace.objects.count() == 1
    assert Membership.objects.get(user=admin).role == Role.OWNER
    assert admin.is_superuser and admin.check_password("a-very-long-admin-passphrase")
    assert admin.password == password_hash
    assert "a-very-long-admin-passphrase" not in first + second
    assert "created user 'admin'" in first and "password unchanged" in second


def test_bootstrap_keeps_a_password_changed_later(settings):
    settings.ADMIN_PASSWORD = "a-very-long-admin-passphrase"
    bootstrap()
    admin = User.objects.get(username="admin")
    admin.set_password("changed-in-the-back-office")
    admin.save()

    bootstrap()

    assert User.objects.get(username="admin").check_password("changed-in-the-back-office")


def test_bootstrap_generates_and_shows_a_password_once_in_development(settings):
    settings.ADMIN_PASSWORD = ""
    settings.DEBUG = True

    first = bootstrap()
    second = bootstrap()

    shown = first.split("shown once): ")[1].strip()
    assert User.objects.get(username="admin").check_password(shown)
    assert "shown once" not in second


@pytest.mark.parametrize("password", ["", "password1234", "short"])
def test_bootstrap_refuses_a_missing_or_weak_password_in_production(settings, password):
    settings.ADMIN_PASSWORD = password
    settings.DEBUG = False

    with pytest.raises(CommandError):
        bootstrap()

    assert not User.objects.filter(username="admin").exists()


def test_bootstrap_creates_then_updates_the_cloud_channel_from_the_environment(settings):
    from apps.whatsapp.models import Channel

    settings.ADMIN_PASSWORD = "a-very-long-admin-passphrase"
    settings.WHATSAPP_PHONE_NUMBER_ID = "123456789"
    settings.WHATSAPP_ACCESS_TOKEN = "token-one"
    settings.WHATSAPP_APP_SECRET = "secret-one"
    settings.WHATSAPP_VERIFY_TOKEN = "verify-one"

    first = bootstrap()
    settings.WHATSAPP_ACCESS_TOKEN = "token-two"
    second = bootstrap()

    channel = Channel.objects.get()
    assert channel.workspace.slug == "default"
    assert (channel.kind, channel.access_token, channel.app_secret) == ("cloud", "token-two", "secret-one")
    assert "created Cloud channel 123456789" in first and "updated Cloud channel 123456789" in second
    assert "token-one" not in first + second


def test_bootstrap_creates_no_channel_without_the_variables(settings):
    from apps.whatsapp.models import Channel

    settings.ADMIN_PASSWORD = "a-very-long-admin-passphrase"
    settings.WHATSAPP_PHONE_NUMBER_ID = ""

    bootstrap()

    assert not Channel.objects.exists()
