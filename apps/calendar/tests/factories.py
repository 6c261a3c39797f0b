from __future__ import annotations

import factory

from apps.accounts.tests.factories import WorkspaceFactory
from apps.calendar.models import Connection, Service


class ConnectionFactory(factory.django.DjangoModelFactory[Connection]):
    class Meta:
        model = Connection

    workspace = factory.SubFactory(WorkspaceFactory)
    provider = Connection.Provider.GOOGLE
    account_email = factory.Sequence(lambda n: f"owner{n}@example.com")
    token = ""


class ServiceFactory(factory.django.DjangoModelFactory[Service]):
    class Meta:
        model = Service

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Corte {n}")
    duration_minutes = 30
    min_notice_minutes = 0
    horizon_days = 30
