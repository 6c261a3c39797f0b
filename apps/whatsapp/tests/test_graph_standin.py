"""The Graph API stand-in over real HTTP: Meta's shapes, faults, rate limit, signed webhooks."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from apps.whatsapp.signature import matching_secret
from standins.graph import GraphStandIn

ROOT = Path(__file__).resolve().parents[3]
APP_SECRET = "standin-app-secret"
TOKEN = "standin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Receiver:
    """A tiny webhook endpoint that keeps every POST (headers and raw body)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._cond:
                    receiver.posts.append((dict(self.headers), body))
                    receiver._cond.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/whatsapp/"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def wait_for(self, count: int, timeout: float = 2.0) -> list[tuple[dict[str, str], bytes]]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.posts) >= count, timeout=timeout)
            return list(self.posts)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def send(http, standin, body, pnid="1001", headers=AUTH):
    return http.post(f"{standin.url}/v21.0/{pnid}/messages", json=body, headers=headers)


def text_body(to="5215550100", body="Hola", **extra):
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}, **extra}


def statuses_of(post):
    headers, body = post
    payload = json.loads(body)
    return headers, payload, payload["entry"][0]["changes"][0]["value"]


# --- sends -----------------------------------------------------------------------------------------
def test_a_send_answers_in_metas_shape_and_is_recorded(graph_standin, http):
    before = time.time()

    response = send(http, graph_standin, text_body(biz_opaque_callback_data="uid-1"))

    assert response.status_code == 200
    answer = response.json()
    [record] = graph_standin.sent
    assert answer == {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "5215550100", "wa_id": "5215550100"}],
        "messages": [{"id": record["wamid"]}],
    }
    assert record["wamid"].startswith("wamid.")
    assert (record["phone_number_id"], record["to"], record["type"]) == ("1001", "5215550100", "text")
    assert record["content"] == {"body": "Hola"}
    assert record["biz_opaque_callback_data"] == "uid-1"
    assert before <= record["received_at"] <= time.time()
    assert http.get(f"{graph_standin.url}/_standin/sent").json() == {"sent": [record]}


def test_every_send_gets_its_own_wamid(graph_standin, http):
    for _ in range(5):
        send(http, graph_standin, text_body())

    assert len({record["wamid"] for record in graph_standin.sent}) == 5


def test_mark_as_read_answers_success_and_is_not_a_send(graph_standin, http):
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN1"}

    response = send(http, graph_standin, body)

    assert (response.status_code, response.json()) == (200, {"success": True})
    assert graph_standin.sent == []
    assert [(r["method"], r["path"]) for r in graph_standin.requests] == [("POST", "/v21.0/1001/messages")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_a_missing_or_unknown_token_is_401_with_code_190(http, headers):
    with GraphStandIn(valid_tokens={TOKEN}) as standin:
        response = send(http, standin, text_body(), headers=headers)
        accepted = send(http, standin, text_body())

        assert response.status_code == 401
        error = response.json()["error"]
        assert (error["code"], error["type"]) == (190, "OAuthException")
        assert accepted.status_code == 200
        assert len(standin.sent) == 1


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (b"{not json", "The request body is not valid JSON."),
        (
            json.dumps({"to": "1", "type": "text", "text": {"body": "x"}}).encode(),
            "The parameter messaging_product is required.",
        ),
        (json.dumps(text_body(to="")).encode(), "The parameter to is required."),
        (json.dumps(text_body(body="x" * 4097)).encode(), "text.body is longer than 4096 characters."),
        (json.dumps({**text_body(), "type": "poll"}).encode(), "Unsupported message type: 'poll'."),
        (
            json.dumps({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {}}).encode(),
            "image needs exactly one of id and link.",
        ),
    ],
)
def test_a_malformed_body_is_400_with_code_100(graph_standin, http, body, details):
    response = http.post(
        f"{graph_standin.url}/v21.0/1001/messages",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["error_data"]["details"]) == (100, details)
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert graph_standin.sent == []


def test_an_unknown_path_is_a_plain_404(graph_standin, http):
    assert http.get(f"{graph_standin.url}/nothing/here").status_code == 404


# --- faults ----------------------------------------------------------------------------------------
def test_fail_next_refuses_that_many_sends_with_metas_error_then_accepts(graph_standin, http):
    graph_standin.fail_next(131056, http_status=400, count=2, retry_after=7)

    answers = [send(http, graph_standin, text_body()) for _ in range(3)]

    assert [a.status_code for a in answers] == [400, 400, 200]
    error = answers[0].json()["error"]
    assert error["code"] == 131056
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert error["fbtrace_id"]
    assert answers[0].headers["Retry-After"] == "7"
    assert len(graph_standin.sent) == 1


def test_a_plain_server_error_has_no_json_body(graph_standin, http):
    graph_standin.fail_next(None, http_status=500)

    response = send(http, graph_standin, text_body())

    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert graph_standin.sent == []


def test_faults_can_be_set_over_http(graph_standin, http):
    control = f"{graph_standin.url}/_standin"

    assert http.post(f"{control}/fail", json={"code": 131047, "http_status": 400}).json() == {"ok": True}
    refused = send(http, graph_standin, text_body())
    http.post(f"{control}/rate_limit", json={"per_second": 1})
    first, second = send(http, graph_standin, text_body()), send(http, graph_standin, text_body())
    bad = http.post(f"{control}/delay", json={"count": 1})

    assert refused.json()["error"]["code"] == 131047
    assert (first.status_code, second.json()["error"]["code"]) == (200, 130429)
    assert bad.status_code == 400 and "seconds" in bad.json()["error"]
    assert http.post(f"{control}/nope", json={}).status_code == 404


def test_delay_next_holds_the_answer_but_the_send_is_already_accepted(graph_standin, http):
    graph_standin.delay_next(0.4)
    started = time.monotonic()

    with pytest.raises(httpx.ReadTimeout):
        http.post(f"{graph_standin.url}/v21.0/1001/messages", json=text_body(), headers=AUTH, timeout=0.15)
    prompt = send(http, graph_standin, text_body())

    assert time.monotonic() - started < 0.4  # only one answer was delayed
    assert prompt.status_code == 200
    assert len(graph_standin.sent) == 2


def test_drop_next_records_the_send_and_cuts_the_connection(graph_standin, http):
    graph_standin.drop_next()

    with pytest.raises(httpx.RemoteProtocolError):
        send(http, graph_standin, text_body())

    assert len(graph_standin.sent) == 1


def test_the_rate_limit_is_per_number_over_a_sliding_second(graph_standin, http, shared_clock):
    graph_standin.clock = shared_clock
    graph_standin.set_rate_limit(3)

    burst = [send(http, graph_standin, text_body()).status_code for _ in range(4)]
    other_number = send(http, graph_standin, text_body(), pnid="2002").status_code
    shared_clock.advance(1)
    later = send(http, graph_standin, text_body()).status_code

    assert burst == [200, 200, 200, 400]
    assert (other_number, later) == (200, 200)
    assert [r["phone_number_id"] for r in graph_standin.sent] == ["1001"] * 3 + ["2002", "1001"]


def test_the_rate_limit_answer_is_130429(graph_standin, http):
    graph_standin.set_rate_limit(1)
    send(http, graph_standin, text_body())

    response = send(http, graph_standin, text_body())

    assert response.json()["error"]["code"] == 130429
    graph_standin.set_rate_limit(None)
    assert send(http, graph_standin, text_body()).status_code == 200


def test_reset_forgets_sends_and_pending_faults(graph_standin, http):
    send(http, graph_standin, text_body())
    graph_standin.fail_next(131026, count=5)
    graph_standin.set_rate_limit(1)

    assert http.post(f"{graph_standin.url}/_standin/reset").json() == {"ok": True}

    assert graph_standin.sent == []
    assert [send(http, graph_standin, text_body()).status_code for _ in range(2)] == [200, 200]


# --- media -----------------------------------------------------------------------------------------
def test_media_metadata_then_download_with_the_bearer(graph_standin, http):
    graph_standin.add_media("MEDIA1", b"\x89PNG-bytes", "image/png")

    metadata = http.get(f"{graph_standin.url}/v21.0/MEDIA1", headers=AUTH).json()
    download = http.get(metadata["url"], headers=AUTH)
    anonymous = http.get(metadata["url"])

    assert metadata == {
        "messaging_product": "whatsapp",
        "url": f"{graph_standin.url}/media/MEDIA1",
        "mime_type": "image/png",
        "sha256": hashlib.sha256(b"\x89PNG-bytes").hexdigest(),
        "file_size": 10,
        "id": "MEDIA1",
    }
    assert (download.status_code, download.content, download.headers["Content-Type"]) == (
        200,
        b"\x89PNG-bytes",
        "image/png",
    )
    assert anonymous.status_code == 401


def test_unknown_media_is_metas_400(graph_standin, http):
    response = http.get(f"{graph_standin.url}/v21.0/NOPE", headers=AUTH)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100


# --- webhooks --------------------------------------------------------------------------------------
def test_each_accepted_send_is_followed_by_signed_status_webhooks_in_order(graph_standin, http, receiver):
    graph_standin.configure_webhooks(receiver.url, APP_SECRET, delay=0.01)

    send(http, graph_standin, text_body(biz_opaque_callback_data="uid-7"))
    posts = receiver.wait_for(3)

    [record] = graph_standin.sent
    assert len(posts) == 3
    for post, expected in zip(posts, ["sent", "delivered", "read"], strict=True):
        headers, payload, value = statuses_of(post)
        assert matching_secret(post[1], headers["X-Hub-Signature-256"], [APP_SECRET]) == APP_SECRET
        assert payload["object"] == "whatsapp_business_account"
        assert payload["entry"][0]["id"] == graph_standin.waba_id
        assert payload["entry"][0]["changes"][0]["field"] == "messages"
        assert value["messaging_product"] == "whatsapp"
        assert value["metadata"] == {"display_phone_number": "15550000000", "phone_number_id": "1001"}
        [status] = value["statuses"]
        timestamp = status.pop("timestamp")
        assert timestamp.isdigit() and abs(int(timestamp) - time.time()) < 5
        assert status == {
            "id": record["wamid"],
            "status": expected,
            "recipient_id": "5215550100",
            "biz_opaque_callback_data": "uid-7",
        }


def test_status_webhooks_follow_the_configured_list_and_omit_absent_callback_data(
    graph_standin, http, receiver
):
    graph_standin.configure_webhooks(receiver.url, APP_SECRET, statuses=("sent", "failed"))

    send(http, graph_standin, text_body())
    posts = receiver.wait_for(2)

    statuses = [statuses_of(post)[2]["statuses"][0] for post in posts]
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    assert all("biz_opaque_callback_data" not in s for s in statuses)
    assert statuses[1]["errors"][0]["code"] == 131026


def test_refused_sends_and_read_receipts_post_no_webhooks(graph_standin, http, receiver):
    graph_standin.configure_webhooks(receiver.url, APP_SECRET)
    graph_standin.fail_next(131047)

    send(http, graph_standin, text_body())
    send(http, graph_standin, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})

    assert graph_standin.flush_webhooks(2.0)
    assert receiver.posts == []


def test_a_failing_webhook_endpoint_is_logged_and_the_stand_in_keeps_serving(graph_standin, http, caplog):
    failing = Receiver(status=500)
    try:
        graph_standin.configure_webhooks(failing.url, APP_SECRET, statuses=("sent",))
        send(http, graph_standin, text_body())
        failing.wait_for(1)
        graph_standin.configure_webhooks("http://127.0.0.1:1/unreachable", APP_SECRET, statuses=("sent",))

        after = send(http, graph_standin, text_body())
        assert graph_standin.flush_webhooks(3.0)
    finally:
        failing.stop()

    assert after.status_code == 200
    assert [w["status_code"] for w in graph_standin.webhooks] == [500, None]
    assert graph_standin.webhooks[1]["error"].startswith("ConnectError")
    warnings = [r.getMessage() for r in caplog.records if r.name == "standins.graph"]
    assert any("answered 500" in w for w in warnings) and any("failed: ConnectError" in w for w in warnings)


def test_inject_inbound_posts_a_signed_customer_message(graph_standin, receiver):
    graph_standin.configure_webhooks(receiver.url, APP_SECRET)

    delivery = graph_standin.inject_inbound("1001", "5215550100", "Hola", name="Lucía", user_id="US.13491")

    [post] = receiver.posts
    headers, payload, value = statuses_of(post)
    assert (delivery.status_code, delivery.error) == (200, "")
    assert matching_secret(post[1], headers["X-Hub-Signature-256"], [APP_SECRET]) == APP_SECRET
    assert value["metadata"]["phone_number_id"] == "1001"
    assert value["contacts"] == [{"profile": {"name": "Lucía"}, "wa_id": "5215550100", "user_id": "US.13491"}]
    [message] = value["messages"]
    assert message.pop("timestamp").isdigit()
    assert message == {
        "id": delivery.wamid,
        "from": "5215550100",
        "from_user_id": "US.13491",
        "type": "text",
        "text": {"body": "Hola"},
    }


def test_inbound_over_http_and_without_a_target_is_409(graph_standin, http, receiver):
    control = f"{graph_standin.url}/_standin"
    unconfigured = http.post(
        f"{control}/inbound", json={"phone_number_id": "1001", "from": "52", "text": "x"}
    )
    http.post(f"{control}/webhooks", json={"url": receiver.url, "app_secret": APP_SECRET})

    answer = http.post(f"{control}/inbound", json={"phone_number_id": "1001", "from": "52", "text": "Buenas"})

    assert unconfigured.status_code == 409
    assert answer.status_code == 200 and answer.json()["status_code"] == 200
    value = statuses_of(receiver.posts[0])[2]
    assert value["contacts"] == [{"profile": {"name": ""}, "wa_id": "52"}]
    assert value["messages"][0]["id"] == answer.json()["wamid"]


# --- lifecycle -------------------------------------------------------------------------------------
def test_stop_closes_kept_alive_connections(http):
    standin = GraphStandIn().start()
    send(http, standin, text_body())  # leaves a pooled keep-alive connection
    url = standin.url

    standin.stop()

    with pytest.raises(httpx.TransportError):
        http.post(f"{url}/v21.0/1001/messages", json=text_body(), headers=AUTH, timeout=1)


def test_the_cli_serves_until_terminated(http):
    proc = subprocess.Popen(
        [sys.executable, "-m", "standins.graph", "--port", "0", "--token", TOKEN, "--log-level", "WARNING"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]

        response = http.post(f"{url}/v21.0/1001/messages", json=text_body(), headers=AUTH)

        assert line.startswith("Graph API stand-in on http://127.0.0.1:")
        assert response.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    assert proc.returncode == 0


def test_webhook_posting_logs_nothing_at_warning_when_all_goes_well(graph_standin, http, receiver, caplog):
    caplog.set_level(logging.WARNING)
    graph_standin.configure_webhooks(receiver.url, APP_SECRET)

    send(http, graph_standin, text_body())
    receiver.wait_for(3)
    graph_standin.flush_webhooks()

    assert [w["status_code"] for w in graph_standin.webhooks] == [200, 200, 200]
    assert [r for r in caplog.records if r.name == "standins.graph"] == []


# --- phone numbers (the channel ownership check) ---------------------------------------------------
def test_a_number_is_read_only_with_its_own_token(graph_standin, http):
    graph_standin.add_number("1001", "token-of-1001", verified_name="Ana", display_phone_number="+34 600")
    graph_standin.add_number("2002", "token-of-2002")

    def read(pnid: str, token: str) -> httpx.Response:
        return http.get(f"{graph_standin.url}/v21.0/{pnid}", headers={"Authorization": f"Bearer {token}"})

    own, other, unknown = read("1001", "token-of-1001"), read("1001", "token-of-2002"), read("1001", "nope")

    assert (own.status_code, own.json()) == (
        200,
        {"verified_name": "Ana", "display_phone_number": "+34 600", "id": "1001", "quality_rating": "GREEN"},
    )
    assert (other.status_code, other.json()["error"]["code"], other.json()["error"]["error_subcode"]) == (
        400,
        100,
        33,
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, 190)
    assert read("3003", "nope").json()["error"]["code"] == 190  # an unknown id tells a bad token apart too
