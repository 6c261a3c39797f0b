from __future__ import annotations

import factory

from apps.accounts.tests.factories import WorkspaceFactory
from apps.campaigns.models import Campaign


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    """A draft; pass status (and scheduled_at for a scheduled one) for another state."""

    class Meta:
        model = Campaign

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
