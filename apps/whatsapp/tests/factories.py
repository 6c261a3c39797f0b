from __future__ import annotations

import factory

from apps.accounts.tests.factories import WorkspaceFactory
from apps.whatsapp.models import Channel


class ChannelFactory(factory.django.DjangoModelFactory[Channel]):
    class Meta:
        model = Channel

    workspace = factory.SubFactory(WorkspaceFactory)
    kind = Channel.Kind.CLOUD
    name = factory.Sequence(lambda n: f"Number {n}")
    phone_number_id = factory.Sequence(lambda n: f"10{n:06d}")
    display_phone_number = factory.Sequence(lambda n: f"+34 600 {n:06d}")
