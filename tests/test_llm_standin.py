"""The LLM stand-in itself: the shapes it answers in and the faults tests can ask of it."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from standins.llm import LLMStandIn

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hola"}]}


@pytest.fixture
def standin():
    with LLMStandIn() as server:
        yield server


def test_openai_shape_with_echo_and_word_count_usage(standin):
    standin.echo()

    body = httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT).json()

    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hola"}
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}


def test_faults_apply_in_order_and_only_to_their_model(standin):
    standin.fail_next(1, status=429, model="other")
    standin.fail_next(2, status=500)

    statuses = [
        httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT).status_code for _ in range(3)
    ]
    other = httpx.post(f"{standin.openai_base}/chat/completions", json={**CHAT, "model": "other"})

    assert statuses == [500, 500, 200]
    assert other.status_code == 429
    assert [r.model for r in standin.chat_requests()] == ["m", "m", "m", "other"]


def test_stall_malformed_and_empty(standin):
    standin.stall(0.3)
    standin.malformed_next()
    standin.empty_next()

    started = time.perf_counter()
    stalled = httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT)
    took = time.perf_counter() - started
    malformed = httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT)
    empty = httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT)

    assert stalled.status_code == 200 and took >= 0.3
    assert standin.requests[0].duration >= 0.3
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    assert empty.json()["choices"][0]["message"]["content"] == ""


def test_anthropic_and_ollama_shapes(standin):
    standin.usage = (3, 4)

    anthropic = httpx.post(f"{standin.url}/v1/messages", json={**CHAT, "system": "x"}).json()
    ollama = httpx.post(f"{standin.url}/api/chat", json={**CHAT, "stream": False}).json()

    assert anthropic["content"] == [{"type": "text", "text": "Hola, soy el asistente virtual."}]
    assert anthropic["usage"] == {"input_tokens": 3, "output_tokens": 4}
    assert (ollama["message"]["content"], ollama["prompt_eval_count"], ollama["eval_count"]) == (
        "Hola, soy el asistente virtual.",
        3,
        4,
    )


def test_a_required_key_is_enforced(standin):
    standin.required_key = "right"

    wrong = httpx.post(
        f"{standin.openai_base}/chat/completions", json=CHAT, headers={"Authorization": "Bearer no"}
    )
    right = httpx.post(f"{standin.url}/v1/messages", json=CHAT, headers={"x-api-key": "right"})

    assert (wrong.status_code, right.status_code) == (401, 200)


def test_lmstudio_load_unload_and_ollama_streamed_pull(standin):
    loaded = httpx.post(f"{standin.url}/api/v1/models/load", json={"model": "qwen2.5-7b-instruct"}).json()
    v0 = httpx.get(f"{standin.url}/api/v0/models").json()["data"][0]["state"]
    httpx.post(f"{standin.url}/api/v1/models/unload", json={"instance_id": loaded["model_instance_id"]})
    v1 = httpx.get(f"{standin.url}/api/v1/models").json()["models"][0]["loaded_instances"]
    pull = httpx.post(f"{standin.url}/api/pull", json={"model": "phi3"})

    assert (loaded["model_instance_id"], v0, v1) == ("qwen2.5-7b-instruct", "loaded", [])
    assert [json.loads(line)["status"] for line in pull.text.splitlines()][-1] == "success"
    assert "phi3:latest" in [m["name"] for m in httpx.get(f"{standin.url}/api/tags").json()["models"]]


def test_latency_holds_every_answer_and_counts_the_calls_in_flight(standin):
    standin.latency = 0.3
    with httpx.Client() as client:
        started = time.perf_counter()
        with ThreadPoolExecutor(5) as pool:
            statuses = list(
                pool.map(
                    lambda _: client.post(f"{standin.openai_base}/chat/completions", json=CHAT).status_code,
                    range(5),
                )
            )
        elapsed = time.perf_counter() - started

    assert statuses == [200] * 5
    assert 0.3 <= elapsed < 1.2  # answered side by side, not one after the other
    assert (standin.peak_in_flight, standin.in_flight) == (5, 0)


def test_rate_limit_answers_429_beyond_the_quota_in_its_window(standin, shared_clock):
    standin.clock = shared_clock
    standin.limit_rate(120, window=1.0)  # 2 a second

    statuses = [
        httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT).status_code for _ in range(3)
    ]
    shared_clock.advance(1)
    later = httpx.post(f"{standin.openai_base}/chat/completions", json=CHAT).status_code

    assert statuses == [200, 200, 429]
    assert later == 200
    assert standin.rate_limited == 1
    assert len(standin.chat_requests()) == 4  # a refused request is still recorded
