"""/api/lmstudio/: LM Studio's and Ollama's model management, against the stand-in over HTTP."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.tests.factories import MembershipFactory, WorkspaceFactory
from apps.assistant.models import ModelPull, ProviderConfig

pytestmark = pytest.mark.django_db

DEAD = "http://127.0.0.1:9"


@pytest.fixture
def local_servers(settings, llm_standin):
    settings.LMSTUDIO_BASE_URL = llm_standin.url
    settings.OLLAMA_BASE_URL = llm_standin.url
    return llm_standin


def client_for(workspace, role=Role.ADMIN):
    membership = MembershipFactory(workspace=workspace, role=role)
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


def test_status_lists_models_with_their_loaded_state(workspace, local_servers):
    local_servers.lmstudio_models["llama-3.2-3b-instruct"].instances.append("llama-3.2-3b-instruct")

    response = client_for(workspace).get("/api/lmstudio/status")

    assert response.status_code == 200
    assert response.json() == {
        "reachable": True,
        "base_url": local_servers.url,
        "api_version": "v1",
        "models": [
            {
                "key": "qwen2.5-7b-instruct",
                "display_name": "qwen2.5-7b-instruct",
                "type": "llm",
                "loaded": False,
                "instance_ids": [],
            },
            {
                "key": "llama-3.2-3b-instruct",
                "display_name": "llama-3.2-3b-instruct",
                "type": "llm",
                "loaded": True,
                "instance_ids": ["llama-3.2-3b-instruct"],
            },
        ],
        "error": "",
    }


def test_status_of_an_lmstudio_before_0_4_comes_from_the_v0_api(workspace, local_servers):
    local_servers.lmstudio_v1 = False
    local_servers.lmstudio_models["qwen2.5-7b-instruct"].instances.append("qwen2.5-7b-instruct")

    body = client_for(workspace).get("/api/lmstudio/status").json()

    assert (body["reachable"], body["api_version"]) == (True, "v0")
    assert [(m["key"], m["loaded"]) for m in body["models"]] == [
        ("qwen2.5-7b-instruct", True),
        ("llama-3.2-3b-instruct", False),
    ]


def test_load_runs_in_a_worker_then_unload_a_model(
    workspace, local_servers, loads_run, django_capture_on_commit_callbacks
):
    client = client_for(workspace, Role.OWNER)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/lmstudio/models/load", {"model": "qwen2.5-7b-instruct"}, format="json")
    loads = client.get("/api/lmstudio/models/loads").json()
    after_load = client.get("/api/lmstudio/status").json()["models"][0]
    unloaded = client.post("/api/lmstudio/models/unload", {"model": "qwen2.5-7b-instruct"}, format="json")
    after_unload = client.get("/api/lmstudio/status").json()["models"][0]

    assert started.status_code == 202
    assert (started.json()["kind"], started.json()["model"], started.json()["status"]) == (
        "load",
        "qwen2.5-7b-instruct",
        "queued",
    )
    assert [(j["model"], j["status"], j["detail"], j["error_code"]) for j in loads] == [
        ("qwen2.5-7b-instruct", "success", "loaded as qwen2.5-7b-instruct in 0.01 s", "")
    ]
    assert after_load["loaded"] is True
    assert unloaded.json() == {"model": "qwen2.5-7b-instruct", "unloaded": ["qwen2.5-7b-instruct"]}
    assert after_unload["loaded"] is False
    calls = [(r.path, r.body) for r in local_servers.requests if r.method == "POST"]
    assert calls == [
        ("/api/v1/models/load", {"model": "qwen2.5-7b-instruct"}),
        ("/api/v1/models/unload", {"instance_id": "qwen2.5-7b-instruct"}),
    ]
    assert client.get("/api/lmstudio/ollama/pulls").json() == []  # loads are listed apart


def test_unloading_a_model_that_is_not_loaded_changes_nothing(workspace, local_servers):
    response = client_for(workspace).post(
        "/api/lmstudio/models/unload", {"model": "llama-3.2-3b-instruct"}, format="json"
    )

    assert response.json() == {"model": "llama-3.2-3b-instruct", "unloaded": []}
    assert not [r for r in local_servers.requests if r.path == "/api/v1/models/unload"]


def test_loading_an_unknown_model_ends_in_an_error_on_its_row(
    workspace, local_servers, loads_run, django_capture_on_commit_callbacks
):
    client = client_for(workspace)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/lmstudio/models/load", {"model": "gpt-17"}, format="json")
    [job] = client.get("/api/lmstudio/models/loads").json()

    assert started.status_code == 202
    assert (job["model"], job["status"], job["error_code"]) == ("gpt-17", "error", "lmstudio_not_found")
    assert job["error"] == "LM Studio answered 404 for /api/v1/models/load."


def test_the_workspace_base_url_and_token_are_used_and_the_token_never_shown(
    settings, workspace, llm_standin
):
    settings.LMSTUDIO_BASE_URL = DEAD
    ProviderConfig.objects.create(
        workspace=workspace, provider="lmstudio", base_url=f"{llm_standin.url}/v1", api_key="lms-token-123456"
    )

    response = client_for(workspace).get("/api/lmstudio/status")

    assert (response.json()["reachable"], response.json()["base_url"]) == (True, llm_standin.url)
    assert llm_standin.requests[0].headers["authorization"] == "Bearer lms-token-123456"
    assert "lms-token-123456" not in response.content.decode()


@pytest.fixture
def loads_run(tasks_captured):
    """The worker for loads, as `pulls_run` is for pulls."""
    tasks_captured.run("local_models.lmstudio_load")
    return tasks_captured


@pytest.fixture
def pulls_run(tasks_captured):
    """The worker: each queued pull runs when its transaction commits, as a worker would pick it up."""
    tasks_captured.run("local_models.ollama_pull")
    return tasks_captured


def test_a_pull_is_queued_at_once_and_the_worker_reports_progress_to_success(
    workspace, local_servers, pulls_run, django_capture_on_commit_callbacks
):
    client = client_for(workspace)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json")
    pulls = client.get("/api/lmstudio/ollama/pulls")
    listed = client.get("/api/lmstudio/ollama/models")

    assert started.status_code == 202
    assert (started.json()["model"], started.json()["status"]) == ("qwen2.5:7b", "queued")
    [pull] = pulls.json()
    assert (pull["status"], pull["detail"], pull["error"]) == ("success", "success", "")
    assert (pull["completed_bytes"], pull["total_bytes"]) == (4000, 4000)
    assert [m["name"] for m in listed.json()["models"]] == ["llama3.2:latest", "qwen2.5:7b"]
    assert listed.json()["models"][0]["parameter_size"] == "3.2B"
    request = next(r for r in local_servers.requests if r.path == "/api/pull")
    assert request.body == {"model": "qwen2.5:7b", "stream": True}


def test_asking_again_while_a_pull_runs_starts_no_second_download(
    workspace, local_servers, tasks_captured, django_capture_on_commit_callbacks
):
    client = client_for(workspace)

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json")
        second = client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json")

    assert (first.status_code, second.status_code) == (202, 202)
    assert len(tasks_captured.ids("local_models.ollama_pull")) == 1
    assert ModelPull.objects.get().status == "queued"


def test_a_pull_silent_for_ten_minutes_lost_its_worker_and_may_start_again(
    workspace, local_servers, pulls_run, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    stuck = ModelPull.objects.create(workspace=workspace, model="qwen2.5:7b", status="pulling")
    ModelPull.objects.filter(pk=stuck.pk).update(updated_at=timezone.now() - timedelta(minutes=11))

    with django_capture_on_commit_callbacks(execute=True):
        started = client_for(workspace).post(
            "/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json"
        )

    stuck.refresh_from_db()
    assert started.status_code == 202
    assert pulls_run.ids("local_models.ollama_pull") == [stuck.pk]
    assert stuck.status == "success"


def test_pulling_a_model_ollama_does_not_know_ends_in_an_error_on_its_row(
    workspace, local_servers, pulls_run, django_capture_on_commit_callbacks
):
    local_servers.ollama_pullable = {"llama3.2:latest"}
    client = client_for(workspace)

    with django_capture_on_commit_callbacks(execute=True):
        started = client.post("/api/lmstudio/ollama/pull", {"model": "nonexistent"}, format="json")
    [pull] = client.get("/api/lmstudio/ollama/pulls").json()

    assert started.status_code == 202
    assert (pull["status"], pull["error_code"]) == ("error", "ollama_not_found")
    assert "does not exist" in pull["error"]
    assert local_servers.ollama_models == ["llama3.2:latest"]


def test_an_error_inside_the_progress_stream_is_reported_and_a_new_pull_may_start(
    workspace, local_servers, pulls_run, django_capture_on_commit_callbacks
):
    local_servers.ollama_pull_error = "max retries exceeded: disk full"
    client = client_for(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json")
    failed = client.get("/api/lmstudio/ollama/pulls").json()[0]
    local_servers.ollama_pull_error = ""

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json")
    again = client.get("/api/lmstudio/ollama/pulls").json()

    assert (failed["status"], failed["error_code"]) == ("error", "ollama_refused")
    assert failed["error"] == "Ollama reported an error during the download."  # not the server's words
    assert [(p["status"], p["error"]) for p in again] == [("success", "")]  # the same row, started afresh
    first, second = pulls_run.ids("local_models.ollama_pull")
    assert first == second


def test_ollama_going_away_mid_pull_is_an_error_on_the_row(workspace, settings, pulls_run):
    from apps.assistant import local_models

    pull = ModelPull.objects.create(workspace=workspace, model="qwen2.5:7b")
    settings.OLLAMA_BASE_URL = DEAD

    result = local_models.ollama_pull_run(pull_id=pull.pk)

    pull.refresh_from_db()
    assert result == "error"
    assert (pull.status, pull.error_code) == ("error", "ollama_unreachable")


def test_a_workspace_sees_only_its_own_pulls(workspace):
    ModelPull.objects.create(workspace=WorkspaceFactory(), model="secret:latest")
    ModelPull.objects.create(workspace=workspace, model="mine:latest")

    pulls = client_for(workspace).get("/api/lmstudio/ollama/pulls").json()

    assert [p["model"] for p in pulls] == ["mine:latest"]


def test_an_unreachable_lmstudio_is_reported_by_status(settings, workspace):
    settings.LMSTUDIO_BASE_URL = DEAD

    response = client_for(workspace).get("/api/lmstudio/status")

    assert response.status_code == 200
    assert response.json()["reachable"] is False
    assert response.json()["models"] == []
    assert "not reachable at http://127.0.0.1:9" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "url", "code"),
    [
        ("post", "/api/lmstudio/models/load", "lmstudio_unreachable"),
        ("post", "/api/lmstudio/models/unload", "lmstudio_unreachable"),
        ("get", "/api/lmstudio/ollama/models", "ollama_unreachable"),
        ("post", "/api/lmstudio/ollama/pull", "ollama_unreachable"),
    ],
)
def test_unreachable_servers_answer_503_in_the_house_shape(settings, workspace, method, url, code):
    settings.LMSTUDIO_BASE_URL = DEAD
    settings.OLLAMA_BASE_URL = DEAD

    response = getattr(client_for(workspace), method)(url, {"model": "m"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == code
    assert DEAD in response.json()["error"]["message"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.AGENT, Role.SUPERVISOR])
def test_only_admins_and_owners_manage_local_models(workspace, local_servers, role):
    client = client_for(workspace, role)

    responses = [
        client.get("/api/lmstudio/status"),
        client.post("/api/lmstudio/models/load", {"model": "qwen2.5-7b-instruct"}, format="json"),
        client.post("/api/lmstudio/ollama/pull", {"model": "qwen2.5:7b"}, format="json"),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert local_servers.requests == []


def test_a_missing_model_name_is_invalid(workspace, local_servers):
    response = client_for(workspace).post("/api/lmstudio/models/load", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
