"""SSRF: a URL set through the API cannot make the platform call its own network (chatbot/egress.py).

Real sockets: an "internal" server on 127.0.0.1 stands for the platform's /metrics (or Redis, or the
cloud's metadata service); it counts every connection it accepts, so "nothing reached it" is checked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory
from apps.assistant.models import ModelPull, ProviderConfig
from apps.assistant.providers import ProviderError, ProviderSpec, complete
from chatbot import egress

pytestmark = pytest.mark.django_db

INTERNAL_PAGE = b"# HELP internal_secret_total platform internals\ninternal_secret_total 42\n"


class _Internal(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        status = 200 if self.path.startswith("/metrics") else 500
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(INTERNAL_PAGE)))
        self.end_headers()
        self.wfile.write(INTERNAL_PAGE)

    do_POST = do_GET


class InternalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Internal)
        self.paths: list[str] = []
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def internal() -> Iterator[InternalServer]:
    server = InternalServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def admin(workspace):
    membership = MembershipFactory(workspace=workspace, role=Role.ADMIN)
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


@pytest.fixture(autouse=True)
def operator_urls_elsewhere(settings):
    # The operator's own model servers are on other ports: nothing here is allowed by them.
    settings.EGRESS_ALLOWED_NETWORKS = []
    settings.LMSTUDIO_BASE_URL = "http://127.0.0.1:1234"
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:11434"
    settings.OPENAI_BASE_URL = ""


def _set(client: APIClient, provider: str, base_url: str) -> Any:
    return client.put(
        "/api/business/providers",
        {"providers": [{"provider": provider, "base_url": base_url}]},
        format="json",
    )


# --- the attack from the issue ----------------------------------------------------------------------
def test_the_platforms_metrics_page_cannot_be_read_through_the_lmstudio_url(workspace, admin, internal):
    # given the attack's URL: the platform's own /metrics, the "?" swallowing the API path appended to it
    attack = f"{internal.url}/metrics?"

    saved = _set(admin, "lmstudio", attack)
    # (a row written before this fix, or by hand, is refused when used as well)
    ProviderConfig.objects.update_or_create(
        workspace=workspace, provider="lmstudio", defaults={"base_url": attack}
    )
    status = admin.get("/api/lmstudio/status")

    assert saved.status_code == 400
    assert saved.json()["error"]["code"] == "url_not_allowed"
    assert status.status_code == 400
    assert status.json()["error"]["code"] == "url_not_allowed"
    assert b"internal_secret_total" not in saved.content + status.content
    assert internal.connections == 0


@pytest.mark.parametrize("provider", ["lmstudio", "ollama", "openai_compatible"])
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",  # the platform itself
        "http://localhost:6379",  # Redis, by name
        "http://10.0.0.5:5432",
        "http://172.16.0.1",
        "http://192.168.1.1",
        "http://169.254.169.254/latest",  # the cloud's metadata service
        "http://100.64.0.1",  # carrier-grade NAT
        "http://0.0.0.0:8000",
        "http://[::1]:8000",
        "http://[fd00:ec2::254]",  # AWS's IPv6 metadata service
        "http://[::ffff:127.0.0.1]:8000",  # IPv4 inside IPv6
        "http://2130706433:8000",  # 127.0.0.1 as one number
        "https://user:password@example.com",  # user-info
        "http://example.com/v1#fragment",
        "http://example.com/v1?x=1",
    ],
)
def test_urls_into_the_platforms_network_are_refused_on_save(workspace, admin, provider, url):
    response = _set(admin, provider, url)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "url_not_allowed"
    assert not ProviderConfig.objects.filter(workspace=workspace).exists()


def test_the_operator_allows_its_own_model_servers_and_the_networks_it_names(settings, workspace, admin):
    settings.OLLAMA_BASE_URL = "http://127.0.0.1:11434"
    settings.EGRESS_ALLOWED_NETWORKS = ["10.0.5.0/24", "gpu-box"]

    same_as_operator = _set(admin, "ollama", "http://127.0.0.1:11434")
    other_port = _set(admin, "ollama", "http://127.0.0.1:8000")
    in_network = _set(admin, "lmstudio", "http://10.0.5.7:1234")
    outside_network = _set(admin, "lmstudio", "http://10.0.6.7:1234")
    public = _set(admin, "openai_compatible", "https://93.184.216.34/v1")

    assert [r.status_code for r in (same_as_operator, other_port, in_network, outside_network, public)] == [
        200,
        400,
        200,
        400,
        200,
    ]
    assert egress.address_allowed("gpu-box", 1234, "192.168.7.7") is True


# --- a remote server's answer is never echoed back -------------------------------------------------
def test_an_allowed_servers_error_page_is_classified_not_echoed(settings, workspace, admin, internal):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    ProviderConfig.objects.create(workspace=workspace, provider="ollama", base_url=internal.url)

    response = admin.get("/api/lmstudio/ollama/models")

    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "ollama_http_500",
        "message": "Ollama failed (HTTP 500).",
        "details": {"status": 500},
    }
    assert internal.paths == ["/api/tags"]
    assert b"internal_secret" not in response.content


def test_an_allowed_server_answering_something_else_is_an_invalid_response(
    settings, workspace, admin, internal
):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    ProviderConfig.objects.create(
        workspace=workspace, provider="lmstudio", base_url=f"{internal.url}/metrics"
    )

    response = admin.get("/api/lmstudio/status")

    assert response.status_code == 200
    assert (response.json()["reachable"], response.json()["models"]) == (False, [])
    assert response.json()["error"] == (
        f"LM Studio at {internal.url}/metrics sent an answer that is not what its API returns."
    )
    assert b"internal_secret" not in response.content


def test_an_llm_providers_error_text_is_not_passed_on(settings, internal):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1"]
    spec = ProviderSpec("openai_compatible", "m", f"{internal.url}/v1", "none")

    with pytest.raises(ProviderError) as caught:
        complete(spec, [{"role": "user", "content": "hola"}], timeout=2, temperature=0, max_tokens=5)

    assert caught.value.message == "server_error (HTTP 500)"
    assert "internal_secret" not in caught.value.message


# --- DNS rebinding: the address connected to is the one checked -------------------------------------
@pytest.fixture
def rebinding(monkeypatch) -> list[str]:
    """A name that resolves to a public address when checked, then to 127.0.0.1 when connected to."""
    answers = ["93.184.216.34"]
    real = egress._getaddrinfo

    def resolve(host: str, port: int) -> list[str]:
        if host != "rebind.example":
            return real(host, port)
        answer = answers[0]
        answers[0] = "127.0.0.1"
        return [answer]

    monkeypatch.setattr(egress, "_getaddrinfo", resolve)
    return answers


def test_a_name_rebound_to_loopback_after_the_check_is_refused_at_connect(
    workspace, admin, internal, rebinding
):
    port = internal.server_address[1]
    saved = _set(admin, "lmstudio", f"http://rebind.example:{port}")  # checked: public
    rebinding[0] = "93.184.216.34"  # the next check passes again; the connection then gets 127.0.0.1

    response = admin.get("/api/lmstudio/status")

    assert saved.status_code == 200
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_not_allowed"
    assert internal.connections == 0


@pytest.mark.parametrize("name", ["openai_compatible", "anthropic", "ollama"])
def test_litellm_connections_are_checked_at_connect_too(internal, rebinding, name):
    port = internal.server_address[1]
    base = f"http://rebind.example:{port}" + ("/v1" if name == "openai_compatible" else "")
    spec = ProviderSpec(name, "m", base, "k")

    with pytest.raises(ProviderError) as caught:
        complete(spec, [{"role": "user", "content": "hola"}], timeout=2, temperature=0, max_tokens=5)

    assert caught.value.outcome == "url_not_allowed"
    assert internal.connections == 0


def test_a_worker_job_on_a_refused_url_ends_on_its_row_without_a_connection(workspace, internal):
    from apps.assistant import local_models

    ProviderConfig.objects.create(workspace=workspace, provider="ollama", base_url=internal.url)
    pull = ModelPull.objects.create(workspace=workspace, model="qwen2.5:7b")

    assert local_models.ollama_pull_run(pull_id=pull.pk) == "error"

    pull.refresh_from_db()
    assert (pull.status, pull.error_code) == ("error", "url_not_allowed")
    assert internal.connections == 0
