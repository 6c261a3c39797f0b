"""Page through a workspace's conversations with a client generated from docs/api/openapi.yaml.

    pip install openapi-python-client
    openapi-python-client generate --path docs/api/openapi.yaml --output-path /tmp/chatbot-client
    PYTHONPATH=/tmp/chatbot-client python docs/api/example_client.py https://chat.example.com admin

The password is asked for. tests/test_api_schema.py generates the same client in CI and makes these
calls against a live server.
"""

from __future__ import annotations

import getpass
import sys

from whats_app_ai_platform_api_client.api.auth import auth_login_create
from whats_app_ai_platform_api_client.api.conversations import conversations_list
from whats_app_ai_platform_api_client.client import AuthenticatedClient, Client
from whats_app_ai_platform_api_client.models import LoginInputRequest


def main(base_url: str, username: str) -> None:
    tokens = auth_login_create.sync(
        client=Client(base_url=base_url),
        body=LoginInputRequest(username=username, password=getpass.getpass()),
    )
    if tokens is None or not hasattr(tokens, "access"):
        raise SystemExit(f"login refused: {tokens}")
    api = AuthenticatedClient(base_url=base_url, token=tokens.access)
    page = 1
    while True:
        listing = conversations_list.sync(client=api, page=page, page_size=100)
        if listing is None or not hasattr(listing, "results"):
            raise SystemExit(f"listing refused: {listing}")
        for conversation in listing.results:
            print(conversation.id, conversation.status, conversation.contact.wa_id)
        if not listing.next_:
            break
        page += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
