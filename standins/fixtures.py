"""pytest fixtures that start the project's stand-in servers (a plugin of the root conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from standins.alert_receiver import AlertReceiver
from standins.google import GoogleStandIn
from standins.graph import GraphStandIn
from standins.microsoft import MicrosoftStandIn


@pytest.fixture
def graph_standin() -> Iterator[GraphStandIn]:
    """A Graph API stand-in on a free local port, stopped after the test."""
    from apps.whatsapp.cloud import graph_host_breaker

    standin = GraphStandIn().start()
    # Breakers are shared state (Redis or files) keyed by host:port, and ports get reused.
    circuit = graph_host_breaker(standin.url)
    circuit.reset()
    try:
        yield standin
    finally:
        standin.stop()
        circuit.reset()


@pytest.fixture
def cloud_settings(settings: Settings, graph_standin: GraphStandIn) -> Settings:
    """pytest-django's `settings`, with the Cloud transport pointed at `graph_standin`."""
    settings.WHATSAPP_GRAPH_URL = graph_standin.url
    return settings


@pytest.fixture
def alert_receiver(settings: Settings) -> Iterator[AlertReceiver]:
    """A receiver of alert webhooks on a free local port, which the egress rules let the platform reach."""
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    receiver = AlertReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def google_standin(settings: Settings) -> Iterator[GoogleStandIn]:
    """Google's OAuth and Calendar API stand-in, with the platform's Google settings pointed at it."""
    standin = GoogleStandIn().start()
    settings.GOOGLE_OAUTH_CLIENT_ID = standin.client_id
    settings.GOOGLE_OAUTH_CLIENT_SECRET = standin.client_secret
    settings.GOOGLE_ACCOUNTS_URL = settings.GOOGLE_OAUTH2_URL = settings.GOOGLE_API_URL = standin.url
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def microsoft_standin(settings: Settings) -> Iterator[MicrosoftStandIn]:
    """Microsoft's identity platform and Graph stand-in (HTTPS, its own CA), the settings pointed at it."""
    standin = MicrosoftStandIn().start()
    settings.MICROSOFT_CLIENT_ID = standin.client_id
    settings.MICROSOFT_CLIENT_SECRET = standin.client_secret
    settings.MICROSOFT_AUTHORITY_URL = settings.MICROSOFT_GRAPH_URL = standin.url
    settings.MICROSOFT_CA_BUNDLE = standin.ca_file
    try:
        yield standin
    finally:
        standin.stop()
