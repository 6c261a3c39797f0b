"""The Cloud API transport against the Graph API stand-in, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from apps.accounts.tests.factories import WorkspaceFactory
from apps.conversations.transport import OutboundRequest, SendError, transport_for
from apps.whatsapp import cloud
from apps.whatsapp.cloud import CloudTransport
from apps.whatsapp.models import Channel
from apps.whatsapp.signature import matching_secret
from standins.graph import meta_error

pytestmark = pytest.mark.django_db

TOKEN = "EAAG-secret-access-token-0123456789"
APP_SECRET = "cloud-app-secret"
TO = "5215550100"


@pytest.fixture
def channel(cloud_settings):
    return Channel.objects.create(
        workspace=WorkspaceFactory.create(),
        kind="cloud",
        phone_number_id="1001",
        access_token=TOKEN,
        app_secret=APP_SECRET,
    )


@pytest.fixture
def transport():
    return CloudTransport()


def request(type_="text", content=None, uid="msg-uid-1", **kwargs):
    return OutboundRequest(
        message_uid=uid,
        to=TO,
        type=type_,
        content=content if content is not None else {"body": "Hola"},
        **kwargs,
    )


def buttons(*titles):
    return [{"type": "reply", "reply": {"id": f"b{n}", "title": title}} for n, title in enumerate(titles)]


def list_action(sections):
    return {"button": "Ver opciones", "sections": sections}


def section(title, *row_titles):
    return {"title": title, "rows": [{"id": f"{title}-{n}", "title": t} for n, t in enumerate(row_titles)]}


def interactive_list(sections, body="Elige"):
    return {"type": "list", "body": {"text": body}, "action": list_action(sections)}


SEND_CONTENTS = [
    ("text", {"preview_url": False, "body": "Hola, ¿en qué te ayudo?"}),
    ("template", {"name": "seguimiento", "language": {"code": "es_MX"}, "components": []}),
    (
        "interactive",
        {"type": "button", "body": {"text": "¿Confirmas?"}, "action": {"buttons": buttons("Sí", "No")}},
    ),
    ("interactive", interactive_list([section("Planes", "Básico", "Pro")])),
    ("image", {"link": "https://example.com/a.jpg", "caption": "Menú"}),
    ("image", {"id": "MEDIA-IMG"}),
    ("audio", {"id": "MEDIA-AUDIO"}),
    ("video", {"link": "https://example.com/v.mp4"}),
    ("document", {"link": "https://example.com/f.pdf", "filename": "factura.pdf"}),
    ("sticker", {"id": "MEDIA-STICKER"}),
    ("location", {"latitude": 19.4326, "longitude": -99.1332, "name": "Oficina", "address": "CDMX"}),
    ("reaction", {"message_id": "wamid.IN1", "emoji": "👍"}),
]


# --- sending ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_", "content"), SEND_CONTENTS, ids=[f"{t}-{n}" for n, (t, _) in enumerate(SEND_CONTENTS)]
)
def test_each_type_is_sent_in_metas_shape_with_our_uid_as_callback_data(
    channel, transport, graph_standin, type_, content
):
    result = transport.send(channel, request(type_, content))

    [record] = graph_standin.sent
    assert result.wamids == [record["wamid"]]
    assert record["phone_number_id"] == "1001"
    assert record["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": TO,
        "type": type_,
        type_: content,
        "biz_opaque_callback_data": "msg-uid-1",
    }
    assert [(r["method"], r["path"]) for r in graph_standin.requests] == [("POST", "/v21.0/1001/messages")]


def test_the_token_goes_as_bearer_and_the_version_from_settings(channel, transport, graph_standin, settings):
    graph_standin.valid_tokens = {TOKEN}
    settings.WHATSAPP_GRAPH_VERSION = "v23.0"

    transport.send(channel, request())

    assert graph_standin.requests[0]["path"] == "/v23.0/1001/messages"
    assert len(graph_standin.sent) == 1


def test_a_reply_carries_the_context_of_the_quoted_message(channel, transport, graph_standin):
    transport.send(channel, request(reply_to_wamid="wamid.CUSTOMER1"))

    assert graph_standin.sent[0]["context"] == {"message_id": "wamid.CUSTOMER1"}


def test_the_registry_gives_this_transport_for_cloud_channels(channel):
    assert isinstance(transport_for(channel), CloudTransport)


def test_a_long_text_goes_as_several_messages_in_order_losing_nothing(channel, transport, graph_standin):
    paragraphs = [f"Párrafo {n}. " + " ".join(["palabra"] * 240) + "." for n in range(6)]  # ~1,950 chars each
    text = "\n\n".join(paragraphs)

    result = transport.send(channel, request(content={"body": text}, reply_to_wamid="wamid.Q"))

    sent = graph_standin.sent
    assert len("\n\n".join(paragraphs[0:3])) > 4096  # so two paragraphs per message is the best fit
    assert [r["content"]["body"] for r in sent] == [
        "\n\n".join(paragraphs[0:2]),
        "\n\n".join(paragraphs[2:4]),
        "\n\n".join(paragraphs[4:6]),
    ]
    assert result.wamids == [r["wamid"] for r in sent]
    assert [r["biz_opaque_callback_data"] for r in sent] == ["msg-uid-1"] * 3
    assert [r["context"] for r in sent] == [{"message_id": "wamid.Q"}, None, None]


def test_a_text_of_exactly_4096_characters_goes_whole(channel, transport, graph_standin):
    transport.send(channel, request(content={"body": "a" * 4096}))

    assert [len(r["content"]["body"]) for r in graph_standin.sent] == [4096]


def test_when_a_later_part_fails_the_sent_parts_are_reported_and_not_to_be_resent(
    channel, transport, graph_standin
):
    graph_standin.set_rate_limit(1)  # the first part goes, the second meets 130429
    text = "\n\n".join(["a" * 3000, "b" * 3000, "c" * 3000])

    with pytest.raises(SendError) as caught:
        transport.send(channel, request(content={"body": text}))

    [record] = graph_standin.sent
    error = caught.value
    assert (error.reason, error.meta_code, error.permanent, error.outcome_unknown) == (
        "rate_limited",
        130429,
        False,
        True,
    )
    assert error.details == {"sent_wamids": [record["wamid"]]}
    assert error.message.startswith("Part 2 of 3 failed after 1 went out")


# --- validation before calling ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_", "content", "message"),
    [
        (
            "interactive",
            {"type": "button", "body": {"text": "¿?"}, "action": {"buttons": buttons("a", "b", "c", "d")}},
            "A button message needs 1 to 3 reply buttons.",
        ),
        (
            "interactive",
            {"type": "button", "body": {"text": "¿?"}, "action": {"buttons": buttons("x" * 21)}},
            f"Button title {'x' * 21!r} is 21 characters; WhatsApp allows 20.",
        ),
        (
            "interactive",
            {"type": "button", "body": {"text": "x" * 1025}, "action": {"buttons": buttons("Sí")}},
            "The body is 1025 characters; WhatsApp allows 1024.",
        ),
        (
            "interactive",
            interactive_list([section(f"S{n}", "fila") for n in range(11)]),
            "A list message needs 1 to 10 sections.",
        ),
        (
            "interactive",
            interactive_list([section("S", "y" * 25)]),
            f"Row title {'y' * 25!r} is 25 characters; WhatsApp allows 24.",
        ),
        (
            "interactive",
            interactive_list([section("A", *"123456"), section("B", *"12345")]),
            "A list message has 11 rows; WhatsApp allows 10 in all.",
        ),
        (
            "interactive",
            {"type": "list", "action": list_action([section("S", "a")])},
            "An interactive list message needs body.text.",
        ),
        ("text", {"body": ""}, "A text message needs a body."),
        (
            "image",
            {"id": "M1", "link": "https://example.com/a.jpg"},
            "The image message needs exactly one of id and link.",
        ),
        ("template", {"name": "t"}, "A template needs a name and language.code."),
        ("poll", {}, "Unsupported message type 'poll'."),
    ],
)
def test_requests_over_metas_limits_fail_permanently_without_calling(
    channel, transport, graph_standin, type_, content, message
):
    with pytest.raises(SendError) as caught:
        transport.send(channel, request(type_, content))

    assert (caught.value.reason, caught.value.permanent, caught.value.message) == (
        "invalid_request",
        True,
        message,
    )
    assert graph_standin.requests == []


# --- Meta's errors ---------------------------------------------------------------------------------
ERRORS = [
    # code, HTTP status, reason, permanent, channel_unhealthy
    (130429, 400, "rate_limited", False, False),
    (131056, 400, "recipient_rate_limited", False, False),
    (131047, 400, "window_closed", True, False),
    (131048, 400, "spam_limited", False, False),
    (131049, 400, "marketing_cap", True, False),
    (130472, 400, "marketing_cap", True, False),
    (131050, 400, "opted_out", True, False),
    (131026, 400, "undeliverable", True, False),
    (132000, 400, "template_invalid", True, False),
    (132001, 400, "template_invalid", True, False),
    (132015, 400, "template_invalid", True, False),
    (131064, 400, "messaging_limit", True, False),
    (190, 401, "auth", True, True),
    (368, 403, "account_restricted", True, True),
    (131031, 403, "account_restricted", True, True),
    (131009, 400, "invalid_request", True, False),
    (100, 400, "invalid_request", True, False),
    (131000, 500, "server_error", False, False),
    (131016, 503, "server_error", False, False),
]


@pytest.mark.parametrize(("code", "http_status", "reason", "permanent", "unhealthy"), ERRORS)
def test_metas_errors_become_send_errors(
    channel, transport, graph_standin, code, http_status, reason, permanent, unhealthy
):
    graph_standin.fail_next(code, http_status=http_status)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    error = caught.value
    assert (error.reason, error.permanent, error.channel_unhealthy, error.meta_code) == (
        reason,
        permanent,
        unhealthy,
        code,
    )
    assert error.outcome_unknown is False
    expected_text = meta_error(code)["error"]["message"]
    assert error.message == f"WhatsApp refused the request (HTTP {http_status}, code {code}): {expected_text}"
    channel.refresh_from_db()
    if unhealthy:
        assert channel.health == Channel.Health.UNHEALTHY
        assert channel.health_detail == error.message
        assert channel.health_changed_at is not None
    else:
        assert (channel.health, channel.health_detail, channel.health_changed_at) == ("unknown", "", None)
    assert graph_standin.sent == []


def test_a_wrong_token_is_auth_and_marks_the_channel_unhealthy(channel, transport, graph_standin):
    graph_standin.valid_tokens = {"another-token"}

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.meta_code, caught.value.channel_unhealthy) == (
        "auth",
        190,
        True,
    )
    channel.refresh_from_db()
    assert channel.health == Channel.Health.UNHEALTHY


def test_a_bare_401_without_metas_body_is_auth(channel, transport, graph_standin):
    graph_standin.fail_next(None, http_status=401)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.meta_code, caught.value.channel_unhealthy) == (
        "auth",
        None,
        True,
    )


def test_a_plain_server_error_is_transient(channel, transport, graph_standin):
    graph_standin.fail_next(None, http_status=500)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    error = caught.value
    assert (error.reason, error.permanent, error.meta_code, error.outcome_unknown) == (
        "server_error",
        False,
        None,
        False,
    )
    assert error.message == "WhatsApp refused the request (HTTP 500): Internal Server Error"


def test_a_gateway_timeout_leaves_the_outcome_unknown(channel, transport, graph_standin):
    graph_standin.fail_next(None, http_status=504)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.permanent, caught.value.outcome_unknown) == (
        "server_error",
        False,
        True,
    )


def test_retry_after_is_taken_from_the_header(channel, transport, graph_standin):
    graph_standin.fail_next(130429, retry_after=12)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert caught.value.retry_after == 12


def test_without_retry_after_there_is_none(channel, transport, graph_standin):
    graph_standin.fail_next(131056)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert caught.value.retry_after is None


def test_the_stand_ins_rate_limit_yields_rate_limited_after_r_sends_in_a_second(
    channel, transport, graph_standin
):
    graph_standin.set_rate_limit(3)

    results = []
    for n in range(4):
        try:
            transport.send(channel, request(uid=f"uid-{n}"))
            results.append("sent")
        except SendError as exc:
            results.append(exc.reason)

    assert results == ["sent", "sent", "sent", "rate_limited"]
    assert [r["biz_opaque_callback_data"] for r in graph_standin.sent] == ["uid-0", "uid-1", "uid-2"]


# --- network failures ------------------------------------------------------------------------------
def test_a_slow_answer_is_a_timeout_with_unknown_outcome(channel, transport, graph_standin, settings):
    settings.WHATSAPP_SEND_TIMEOUT = 0.2
    graph_standin.delay_next(0.6)

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    error = caught.value
    assert (error.reason, error.permanent, error.outcome_unknown, error.meta_code) == (
        "timeout",
        False,
        True,
        None,
    )
    assert len(graph_standin.sent) == 1  # it did reach "Meta": the caller must reconcile, not resend


def test_a_connection_cut_after_sending_is_a_timeout_with_unknown_outcome(channel, transport, graph_standin):
    graph_standin.drop_next()

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.permanent, caught.value.outcome_unknown) == (
        "timeout",
        False,
        True,
    )
    assert len(graph_standin.sent) == 1


def test_an_unreachable_graph_api_is_a_network_error_that_never_sent(channel, transport, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.WHATSAPP_GRAPH_URL = f"http://127.0.0.1:{port}"

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.permanent, caught.value.outcome_unknown) == (
        "network",
        False,
        False,
    )


@pytest.mark.parametrize(
    ("exception", "reason", "outcome_unknown"),
    [
        (httpx.ConnectTimeout, "timeout", False),
        (httpx.PoolTimeout, "timeout", False),
        (httpx.ConnectError, "network", False),
        (httpx.ReadTimeout, "timeout", True),
        (httpx.ReadError, "timeout", True),
        (httpx.RemoteProtocolError, "timeout", True),
    ],
)
def test_transport_failures_say_whether_the_request_may_have_gone(
    channel, transport, monkeypatch, exception, reason, outcome_unknown
):
    def fail(http_request):
        raise exception("boom", request=http_request)

    monkeypatch.setattr(cloud, "http_client", lambda: httpx.Client(transport=httpx.MockTransport(fail)))

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.permanent, caught.value.outcome_unknown) == (
        reason,
        False,
        outcome_unknown,
    )


# --- channel health --------------------------------------------------------------------------------
def test_a_successful_send_heals_an_unhealthy_channel(channel, transport, graph_standin):
    Channel.objects.filter(pk=channel.pk).update(
        health=Channel.Health.UNHEALTHY, health_detail="token expired"
    )
    channel.refresh_from_db()

    transport.send(channel, request())

    channel.refresh_from_db()
    assert (channel.health, channel.health_detail) == (Channel.Health.OK, "")


def test_a_successful_send_to_a_healthy_channel_writes_nothing(
    channel, transport, graph_standin, django_assert_num_queries
):
    Channel.objects.filter(pk=channel.pk).update(health=Channel.Health.OK)
    channel.refresh_from_db()

    with django_assert_num_queries(0):
        transport.send(channel, request())


def test_transient_errors_leave_the_channels_health_alone(channel, transport, graph_standin):
    Channel.objects.filter(pk=channel.pk).update(health=Channel.Health.OK)
    channel.refresh_from_db()
    graph_standin.fail_next(130429)

    with pytest.raises(SendError):
        transport.send(channel, request())

    channel.refresh_from_db()
    assert channel.health == Channel.Health.OK


def test_a_channel_without_a_token_is_unhealthy_and_nothing_is_called(channel, transport, graph_standin):
    Channel.objects.filter(pk=channel.pk).update(access_token="")
    channel.refresh_from_db()

    with pytest.raises(SendError) as caught:
        transport.send(channel, request())

    assert (caught.value.reason, caught.value.channel_unhealthy) == ("auth", True)
    channel.refresh_from_db()
    assert (channel.health, channel.health_detail) == ("unhealthy", "The channel has no access token.")
    assert graph_standin.requests == []


# --- secrets ---------------------------------------------------------------------------------------
def test_the_access_token_never_reaches_logs_or_error_messages(
    channel, transport, graph_standin, caplog, settings
):
    caplog.set_level(logging.DEBUG)
    graph_standin.fail_next(190, http_status=401, message=f"Error validating access token {TOKEN}: expired")
    messages = []

    with pytest.raises(SendError) as echoed:
        transport.send(channel, request())
    messages.append(str(echoed.value))
    settings.WHATSAPP_SEND_TIMEOUT = 0.1
    graph_standin.delay_next(0.4)
    with pytest.raises(SendError) as timed_out:
        transport.send(channel, request())
    messages.append(str(timed_out.value))
    with pytest.raises(SendError) as missing:
        transport.fetch_media(channel, "NOPE")
    messages.append(str(missing.value))

    channel.refresh_from_db()
    assert echoed.value.message == (
        "WhatsApp refused the request (HTTP 401, code 190): Error validating access token [redacted]: expired"
    )
    assert caplog.records  # the failures were logged...
    assert TOKEN not in caplog.text  # ...without the token
    assert all(TOKEN not in message for message in messages)
    assert TOKEN not in channel.health_detail
    assert echoed.value.__cause__ is None and timed_out.value.__cause__ is None


# --- read receipts and media -----------------------------------------------------------------------
def test_mark_read_posts_metas_read_receipt(channel, transport, graph_standin):
    assert transport.mark_read(channel, "wamid.CUSTOMER1") is None

    assert [(r["method"], r["path"]) for r in graph_standin.requests] == [("POST", "/v21.0/1001/messages")]
    assert graph_standin.sent == []


def test_mark_read_with_a_wrong_token_is_auth(channel, transport, graph_standin):
    graph_standin.valid_tokens = {"another-token"}

    with pytest.raises(SendError) as caught:
        transport.mark_read(channel, "wamid.CUSTOMER1")

    assert (caught.value.reason, caught.value.channel_unhealthy) == ("auth", True)


def test_fetch_media_reads_the_metadata_then_downloads_the_bytes(channel, transport, graph_standin):
    content = b"\xff\xd8\xff jpeg bytes"
    graph_standin.add_media("MEDIA1", content, "image/jpeg")

    media = transport.fetch_media(channel, "MEDIA1")

    assert (media.content, media.mime_type, media.sha256, media.filename) == (
        content,
        "image/jpeg",
        hashlib.sha256(content).hexdigest(),
        "",
    )
    assert [(r["method"], r["path"]) for r in graph_standin.requests] == [
        ("GET", "/v21.0/MEDIA1"),
        ("GET", "/media/MEDIA1"),
    ]


def test_media_declared_over_100_mb_is_refused_without_downloading(channel, transport, graph_standin):
    graph_standin.add_media("BIG", b"tiny", "video/mp4", file_size=100 * 1024 * 1024 + 1)

    with pytest.raises(SendError) as caught:
        transport.fetch_media(channel, "BIG")

    assert (caught.value.reason, caught.value.permanent) == ("invalid_request", True)
    assert caught.value.message == "Media BIG is larger than 100 MB."
    assert [r["path"] for r in graph_standin.requests] == ["/v21.0/BIG"]


def test_media_larger_than_its_metadata_said_is_cut_off(channel, transport, graph_standin, monkeypatch):
    monkeypatch.setattr(cloud, "MAX_MEDIA_BYTES", 1000)
    graph_standin.add_media("LIAR", b"x" * 5000, "audio/ogg", file_size=10)

    with pytest.raises(SendError) as caught:
        transport.fetch_media(channel, "LIAR")

    assert (caught.value.reason, caught.value.permanent) == ("invalid_request", True)


def test_unknown_media_is_a_permanent_invalid_request(channel, transport, graph_standin):
    with pytest.raises(SendError) as caught:
        transport.fetch_media(channel, "NOPE")

    assert (caught.value.reason, caught.value.permanent, caught.value.meta_code) == (
        "invalid_request",
        True,
        100,
    )


# --- reconciliation through status webhooks --------------------------------------------------------
def test_status_webhooks_of_a_send_carry_our_uid_and_metas_signature(channel, transport, graph_standin):
    posts: list[tuple[str, bytes]] = []
    arrived = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(
                (self.headers["X-Hub-Signature-256"], self.rfile.read(int(self.headers["Content-Length"])))
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if len(posts) == 3:
                arrived.set()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        graph_standin.configure_webhooks(f"http://127.0.0.1:{server.server_address[1]}/", APP_SECRET)

        result = transport.send(channel, request(uid="uid-reconcile"))
        assert arrived.wait(2.0)
    finally:
        server.shutdown()
        server.server_close()

    statuses = [json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0] for _, body in posts]
    assert [(s["id"], s["status"], s["biz_opaque_callback_data"]) for s in statuses] == [
        (result.wamids[0], "sent", "uid-reconcile"),
        (result.wamids[0], "delivered", "uid-reconcile"),
        (result.wamids[0], "read", "uid-reconcile"),
    ]
    assert all(matching_secret(body, signature, [APP_SECRET]) == APP_SECRET for signature, body in posts)


def test_upload_media_posts_the_file_as_multipart_and_returns_metas_id(channel, transport, graph_standin):
    content = b"\x89PNG\r\n\x1a\n not really a png"

    media_id = transport.upload_media(channel, content=content, mime_type="image/png", filename="talla.png")

    [upload] = graph_standin.uploads
    assert upload == {"id": media_id, "filename": "talla.png", "mime_type": "image/png"}
    assert transport.fetch_media(channel, media_id).content == content
    assert graph_standin.requests[0]["path"] == "/v21.0/1001/media"


def test_a_refused_upload_is_a_send_error_and_nothing_is_stored(channel, transport, graph_standin):
    graph_standin.valid_tokens = {"another-token"}

    with pytest.raises(SendError) as caught:
        transport.upload_media(channel, content=b"x", mime_type="image/png", filename="a.png")

    assert (caught.value.reason, caught.value.permanent) == ("auth", True)
    assert graph_standin.uploads == []
