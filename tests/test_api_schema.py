"""The API's published contract (issue 18 item 1): docs/api/openapi.yaml is exactly what the code
serves, valid OpenAPI, and a third-party generator (openapi-python-client, default settings) makes
from it a client that logs in and pages through a list against a live server."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from apps.accounts.tests.factories import PASSWORD, MembershipFactory
from apps.conversations.tests.factories import ConversationFactory
from apps.whatsapp.tests.factories import ChannelFactory
from chatbot.openapi import enum_varnames

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "docs" / "api" / "openapi.yaml"


def test_the_committed_schema_is_the_one_the_code_serves(tmp_path):
    call_command("spectacular", "--file", str(tmp_path / "openapi.yaml"))

    assert (tmp_path / "openapi.yaml").read_text() == SCHEMA.read_text(), (
        "the API changed: run `make schema` and commit docs/api/openapi.yaml"
    )


def test_the_schema_is_valid_openapi():
    spec, _ = read_from_filename(str(SCHEMA))
    validate(spec)  # raises on the first error (a default that breaks its own pattern, say)


def test_enum_names_stay_apart_where_generators_would_fold_them():
    zones = ["GMT0", "GMT+0", "GMT-0", "Etc/GMT+1", "Etc/GMT-1", "America/Port-au-Prince", "2fa"]

    names = enum_varnames(zones)

    assert len(set(names)) == len(zones)
    assert names[3:6] == ["ETC_GMT_PLUS_1", "ETC_GMT_MINUS_1", "AMERICA_PORT_AU_PRINCE"]
    assert all(name[0].isalpha() for name in names)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_generated_client_logs_in_and_fetches_page_two(live_server, tmp_path):
    generate = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(
        [str(generate), "generate", "--path", str(SCHEMA), "--output-path", str(tmp_path / "client")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    membership = MembershipFactory.create(role="viewer")
    channel = ChannelFactory.create(workspace=membership.workspace)
    ConversationFactory.create_batch(3, channel=channel)
    sys.path.insert(0, str(tmp_path / "client"))
    try:
        package = "whats_app_ai_platform_api_client"
        client_module = importlib.import_module(f"{package}.client")
        login = importlib.import_module(f"{package}.api.auth.auth_login_create")
        listing = importlib.import_module(f"{package}.api.conversations.conversations_list")
        login_input = importlib.import_module(f"{package}.models.login_input_request").LoginInputRequest

        tokens = login.sync(
            client=client_module.Client(base_url=live_server.url),
            body=login_input(username=membership.user.username, password=PASSWORD),
        )
        api = client_module.AuthenticatedClient(base_url=live_server.url, token=tokens.access)
        second = listing.sync(client=api, page=2, page_size=2)
        past_the_end = listing.sync_detailed(client=api, page=9, page_size=2)
    finally:
        sys.path.remove(str(tmp_path / "client"))

    assert second.count == 3 and len(second.results) == 1 and second.next_ is None
    assert past_the_end.status_code == 404
