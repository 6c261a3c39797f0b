"""Structured logs: the ids of the work in hand on every line, and JSON lines when LOG_FORMAT=json.

The request id (chatbot/request_id.py), the Celery task id (celery_app.py) and the workspace,
conversation, message and channel ids, bound by the code that knows them, live in context variables
for the request or task; `ContextFilter` copies them onto every record. Only these ids go out, never
a record's other attributes, so a message's text or a token reaches a line only through its
format string, and known secrets are masked even there.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FIELDS = ("request_id", "task_id", "task", "workspace_id", "conversation_id", "message_id", "channel_id")
_CONTEXT: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"log_{name}", default=None) for name in FIELDS
}
_MASK = "[redacted]"
# Credentials whatever their source: bearer tokens, a URL's token-like parameters (Meta's verification
# GET carries hub.verify_token), OpenAI/Gemini/xAI keys, Meta's access tokens.
_SECRET_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    r"|([?&][\w.]*(?:token|key|secret|password|signature)=)[^&\s\"']+"
    r"|\b(?:sk-[A-Za-z0-9_-]{8,}|AIza[0-9A-Za-z_-]{20,}|xai-[A-Za-z0-9]{8,}|EAA[A-Za-z0-9]{20,})"
)


def bind(**ids: Any) -> None:
    """Name what the current request or task works on, for the rest of it (None clears a field)."""
    for name, value in ids.items():
        _CONTEXT[name].set(value)


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Like `bind`, undone on leaving the block (a batch task's per-message ids)."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def clear() -> None:
    for var in _CONTEXT.values():
        var.set(None)


def current() -> dict[str, Any]:
    return {name: value for name, var in _CONTEXT.items() if (value := var.get()) is not None}


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT.items():
            setattr(record, name, var.get())
        return True


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would mask ordinary words; the settings' real secrets are long.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return _SECRET_SHAPES.sub(lambda m: (m.group(1) or m.group(2) or "") + _MASK, text)


def _settings_secrets() -> list[str]:
    from django.conf import settings  # noqa: PLC0415 - the formatter is built while settings load

    names = (
        "SECRET_KEY",
        "JWT_SECRET",
        "METRICS_TOKEN",
        "ADMIN_PASSWORD",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
        "WHATSAPP_ACCESS_TOKEN",
        "SANDBOX_APP_SECRET",
        "GEMINI_API_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "XAI_API_KEY",
    )
    values = [str(getattr(settings, name, "") or "") for name in names]
    return values + [str(key) for key in getattr(settings, "FERNET_KEYS", [])]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context's ids, and a traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redact: Redactor | None = None

    def _redactor(self) -> Redactor:
        if self._redact is None:  # settings are complete by the first line, not when LOGGING is read
            try:
                self._redact = Redactor(_settings_secrets())
            except Exception:  # noqa: BLE001 - settings unusable: mask by shape alone
                return Redactor()
        return self._redact

    def format(self, record: logging.LogRecord) -> str:
        redact = self._redactor()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is None:
                value = _CONTEXT[name].get()  # a handler configured without the filter
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The plain format (LOG_FORMAT=text), secrets masked the same way."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._json = JsonFormatter()

    def format(self, record: logging.LogRecord) -> str:
        return self._json._redactor()(super().format(record))
