"""Structured logs (LOG_FORMAT=json): each line a JSON object with the ids of the request or task in
hand; the request id comes back in X-Request-ID; a message's text and secrets never reach a line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.utils import timezone

from apps.conversations import tasks
from apps.conversations.events import InboundMessage
from apps.conversations.models import Message
from apps.conversations.services.ingest import inbound_store
from apps.whatsapp.tests.factories import ChannelFactory
from chatbot import log_context
from chatbot.log_context import ContextFilter, JsonFormatter, TextFormatter

HEX_ID = re.compile(r"[0-9a-f]{32}")


class Lines:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def parsed(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_lines() -> Iterator[Lines]:
    """The root logger's lines at DEBUG, as LOG_FORMAT=json writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    log_context.clear()
    yield Lines(stream)
    root.removeHandler(handler)
    root.setLevel(level)
    log_context.clear()


def test_a_sane_request_id_is_kept_and_returned():
    response = Client(headers={"X-Request-ID": "edge-7f3a9c01.req:42"}).get("/healthz")

    assert response["X-Request-ID"] == "edge-7f3a9c01.req:42"


@pytest.mark.parametrize(
    "presented",
    [None, "", "two words", "line\nbreak", "x" * 129, '"><script>', "-starts-with-a-dash", "ñandú"],
)
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(presented):
    headers = {"X-Request-ID": presented} if presented is not None else {}

    first = Client(headers=headers).get("/healthz")["X-Request-ID"]
    second = Client(headers=headers).get("/healthz")["X-Request-ID"]

    assert HEX_ID.fullmatch(first) and HEX_ID.fullmatch(second)
    assert first != second


@pytest.mark.django_db
def test_lines_written_while_serving_a_request_carry_its_id(json_lines):
    response = Client().get("/api/no-such-thing/")  # Django logs "Not Found" after the view

    [line] = [line for line in json_lines.parsed() if line["logger"] == "django.request"]
    assert response.status_code == 404
    assert line["request_id"] == response["X-Request-ID"]
    assert line["level"] == "WARNING" and line["message"] == "Not Found: /api/no-such-thing/"
    assert set(line) <= {"ts", "level", "logger", "message", "request_id"}  # nothing left from another


def test_a_json_line_has_the_bound_ids_and_nothing_else(json_lines):
    with log_context.bound(workspace_id=7, conversation_id=31):
        logging.getLogger("apps.test").info("reply to %s queued", 99, extra={"body": "hola, soy Ana"})
    logging.getLogger("apps.test").info("after")

    first, second = json_lines.parsed()
    assert {k: v for k, v in first.items() if k != "ts"} == {
        "level": "INFO",
        "logger": "apps.test",
        "message": "reply to 99 queued",
        "workspace_id": 7,
        "conversation_id": 31,
    }
    assert "workspace_id" not in second
    assert "hola" not in json_lines.text  # an `extra` attribute is never written


def test_secrets_are_masked_even_in_a_message_or_a_traceback(settings, json_lines):
    settings.WHATSAPP_ACCESS_TOKEN = "EAAG-test-only-access-token-0123456789"
    json_lines.stream.truncate(0)
    handler = logging.getLogger().handlers[-1]
    handler.setFormatter(JsonFormatter())  # built after the setting changed, as at a process start
    logger = logging.getLogger("apps.test")

    logger.warning("calling with %s", settings.WHATSAPP_ACCESS_TOKEN)
    logger.warning("header Authorization: Bearer abcdefghijklmnop0123 and key sk-proj-abcdefgh12345678")
    logger.info(
        '"GET /webhooks/whatsapp/?hub.mode=subscribe&hub.verify_token=chan-0123456789&hub.challenge=7 HTTP/1.1"'
    )
    try:
        raise RuntimeError(f"token {settings.WHATSAPP_ACCESS_TOKEN} refused")
    except RuntimeError:
        logger.exception("send failed")

    text = json_lines.text
    assert "test-only-access-token" not in text
    assert "abcdefghijklmnop0123" not in text and "sk-proj-abcdefgh" not in text
    assert "chan-0123456789" not in text
    assert text.count("[redacted]") == 5
    messages = [line["message"] for line in json_lines.parsed()]
    assert messages[1] == "header Authorization: Bearer [redacted] and key [redacted]"
    assert messages[2] == (
        '"GET /webhooks/whatsapp/?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=7 HTTP/1.1"'
    )


def test_the_text_format_masks_secrets_too(settings):
    settings.JWT_SECRET = "jwt-test-only-0123456789-0123456789-abc"
    record = logging.LogRecord(
        "apps.test", logging.INFO, __file__, 1, "signed with %s", (settings.JWT_SECRET,), None
    )

    line = TextFormatter("%(levelname)s %(message)s").format(record)

    assert line == "INFO signed with [redacted]"


@pytest.mark.django_db
def test_processing_and_answering_a_message_logs_its_ids_and_never_its_text_or_a_token(
    json_lines, llm_standin, standin_providers, tasks_captured, settings, monkeypatch
):
    # The worker's handler around each task closes old connections; this test's is its transaction.
    monkeypatch.setattr("django.db.close_old_connections", lambda: None)
    settings.OPENAI_API_KEY = "sk-test-only-env-key-0123456789"
    token = "EAAG-test-only-channel-token-0123456789"
    channel = ChannelFactory.create(access_token=token)
    standin_providers(channel.workspace_id, ["openai_compatible"])
    llm_standin.answer = "Sí, la de queso sin gluten sale los viernes."
    body = "¿Tenéis tarta de queso sin gluten? Mi teléfono es 600111222"
    item = InboundMessage(
        wamid="wamid.logs.1",
        type="text",
        timestamp=timezone.now(),
        from_wa_id="34600111222",
        from_name="Marisa Prieto",
        body=body,
        raw={"type": "text", "text": {"body": body}},
    )
    [message_id] = inbound_store(channel=channel, messages=[item])

    processed = tasks.inbound_message_process.apply(args=[message_id])  # as a worker runs it: signals
    message = Message.objects.get(pk=message_id)
    replied = tasks.reply_generate.apply(args=[message.conversation_id, message_id])

    assert (processed.result, replied.result) == ("bot", "replied")
    text = json_lines.text
    for private in ("tarta", "queso", "gluten", "600111222", "Marisa", token, "sk-test-only-env-key"):
        assert private not in text
    lines = json_lines.parsed()
    [reply_line] = [line for line in lines if line["message"].startswith(f"reply to {message_id} by ")]
    assert reply_line["task_id"] == replied.id and reply_line["task"] == "llm.reply_generate"
    assert reply_line["workspace_id"] == channel.workspace_id
    assert reply_line["conversation_id"] == message.conversation_id
    assert reply_line["message_id"] == message_id
    task_ids = {line.get("task_id") for line in lines}
    assert processed.id in task_ids  # the inbound task's own lines (Celery's "succeeded" at least)


def test_a_process_started_with_log_format_json_writes_json_lines(tmp_path):
    from tests.test_settings import GOOD, run_manage

    code = "import logging; logging.getLogger('apps.test').warning('started %s', 1)"
    result = run_manage(
        tmp_path, "shell", "-c", code, **{**GOOD, "LOG_FORMAT": "json", "METRICS_PUBLIC": "1"}
    )

    assert result.returncode == 0, result.stderr
    [line] = [json.loads(line) for line in result.stderr.splitlines() if '"apps.test"' in line]
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "apps.test", "started 1")


def test_an_unknown_log_format_stops_the_start_naming_it(tmp_path):
    from tests.test_settings import GOOD, run_manage

    result = run_manage(tmp_path, "check", **{**GOOD, "LOG_FORMAT": "xml", "METRICS_PUBLIC": "1"})

    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: LOG_FORMAT must be text or json, got 'xml'"
