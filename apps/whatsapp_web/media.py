"""The store of media on WhatsApp Web, both ways.

Received: WhatsApp Web hands a message's file to the browser when it
arrives (the Cloud API keeps it for us to fetch later; WhatsApp Web may not), so worker-web downloads it
through the bridge at once and keeps it under WHATSAPP_WEB_MEDIA_DIR/channel-<id>/, named by a hash of
the message id, with its type beside it. The `web` transport's fetch_media reads it back, so the API and
the inbox serve it as they serve Cloud media.

Sent: a file staff upload is kept under channel-<id>/outbox/ by the `web` transport's upload_media (in
the web process; the folder is shared with worker-web like the received media), and worker-web reads it
back, bounded by WHATSAPP_WEB_SEND_MAX_BYTES, when it sends. A file given by link is fetched by
worker-web through the egress guard, streamed and cut off at the same bound.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from pathlib import Path

import httpx
from django.conf import settings

from apps.conversations.transport import MediaFile
from chatbot import egress

# The file types each kind of WhatsApp message may hold (a picture that says it is HTML is refused).
KIND_FAMILIES = {
    "image": ("image/",),
    "sticker": ("image/",),
    "video": ("video/",),
    "audio": ("audio/",),
    "ptt": ("audio/",),
    "document": ("",),  # any file
}
# Never kept, whatever the message says it is: a page or a script of ours to the browser that opens it.
REFUSED_TYPES = ("text/html", "image/svg+xml", "application/xhtml+xml", "text/javascript")


class MediaRefused(ValueError):
    """The file is not what its message says, or too large: it is not kept."""


def size_label(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def media_check(*, kind: str, mime_type: str, size: int) -> None:
    """Refuse a file larger than the cap, or whose type does not fit the message's kind."""
    limit = settings.WHATSAPP_WEB_MEDIA_MAX_BYTES
    if size > limit:
        raise MediaRefused(f"larger than {size_label(limit)} ({size} bytes)")
    base = mime_type.split(";")[0].strip().lower()
    families = KIND_FAMILIES.get(kind)
    if families is None:
        raise MediaRefused(f"a {kind} message carries no media")
    if base in REFUSED_TYPES or not base or not base.startswith(families):
        raise MediaRefused(f"a {kind} message with a file of type {base or 'unknown'}")


def _folder(channel_id: int) -> Path:
    root = Path(settings.WHATSAPP_WEB_MEDIA_DIR)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = root / f"channel-{channel_id}"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def _name(wamid: str) -> str:
    return hashlib.sha256(wamid.encode()).hexdigest()


def media_save(*, channel_id: int, wamid: str, content: bytes, mime_type: str, filename: str = "") -> str:
    """Keep a message's file (written whole, then renamed: a reader never sees half of it); its SHA-256."""
    folder = _folder(channel_id)
    name = _name(wamid)
    digest = hashlib.sha256(content).hexdigest()
    for suffix, data in (
        ("", content),
        (".json", json.dumps({"mime_type": mime_type, "filename": filename, "sha256": digest}).encode()),
    ):
        partial = folder / f"{name}{suffix}.part"
        partial.write_bytes(data)
        partial.chmod(0o600)
        partial.replace(folder / f"{name}{suffix}")
    return digest


def media_read(*, channel_id: int, wamid: str) -> MediaFile | None:
    """The kept file of a message, None when there is none."""
    path = Path(settings.WHATSAPP_WEB_MEDIA_DIR) / f"channel-{channel_id}" / _name(wamid)
    try:
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        content = path.read_bytes()
    except (OSError, ValueError):
        return None
    return MediaFile(
        content=content,
        mime_type=str(meta.get("mime_type") or "application/octet-stream"),
        sha256=str(meta.get("sha256") or ""),
        filename=str(meta.get("filename") or ""),
    )


# --- files to send ---------------------------------------------------------------------------------
UPLOAD_PREFIX = "web-upload:"
_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def _outbox(channel_id: int) -> Path:
    path = _folder(channel_id) / "outbox"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def outbox_save(*, channel_id: int, content: bytes, mime_type: str, filename: str) -> str:
    """Keep a file to send later; the media id a send names (`web-upload:<token>`)."""
    token = uuid.uuid4().hex
    folder = _outbox(channel_id)
    meta = {"mime_type": mime_type, "filename": filename, "sha256": hashlib.sha256(content).hexdigest()}
    for suffix, data in (("", content), (".json", json.dumps(meta).encode())):
        partial = folder / f"{token}{suffix}.part"
        partial.write_bytes(data)
        partial.chmod(0o600)
        partial.replace(folder / f"{token}{suffix}")
    return UPLOAD_PREFIX + token


def outbox_read(*, channel_id: int, media_id: str, max_bytes: int) -> MediaFile:
    """A kept file to send, refused (MediaRefused) when unknown or larger than `max_bytes`: its size is
    read before its bytes, so a file that grew on disk is never loaded whole."""
    token = media_id.removeprefix(UPLOAD_PREFIX)
    if not media_id.startswith(UPLOAD_PREFIX) or not _TOKEN.match(token):
        raise MediaRefused(f"{media_id[:80]!r} is not a file uploaded for WhatsApp Web")
    path = Path(settings.WHATSAPP_WEB_MEDIA_DIR) / f"channel-{channel_id}" / "outbox" / token
    try:
        meta = json.loads(path.with_name(token + ".json").read_text())
        size = path.stat().st_size
    except (OSError, ValueError) as exc:
        raise MediaRefused("the uploaded file is gone") from exc
    if size > max_bytes:
        raise MediaRefused(f"larger than {size_label(max_bytes)} ({size} bytes)")
    try:
        with path.open("rb") as file:
            content = file.read(max_bytes + 1)
    except OSError as exc:
        raise MediaRefused("the uploaded file is gone") from exc
    if len(content) > max_bytes:
        raise MediaRefused(f"larger than {size_label(max_bytes)}")
    return MediaFile(
        content=content,
        mime_type=str(meta.get("mime_type") or "application/octet-stream"),
        sha256=str(meta.get("sha256") or ""),
        filename=str(meta.get("filename") or ""),
    )


def outbox_remove(*, channel_id: int, media_id: str) -> None:
    """Forget a kept file once it was sent (each upload names one message); unknown ids are ignored."""
    token = media_id.removeprefix(UPLOAD_PREFIX)
    if not media_id.startswith(UPLOAD_PREFIX) or not _TOKEN.match(token):
        return
    path = Path(settings.WHATSAPP_WEB_MEDIA_DIR) / f"channel-{channel_id}" / "outbox" / token
    for kept in (path, path.with_name(token + ".json")):
        kept.unlink(missing_ok=True)


class LinkFailed(RuntimeError):
    """The link could not be fetched now (network, 5xx): trying again later may work."""


def link_fetch(*, link: str, max_bytes: int, timeout: float) -> MediaFile:
    """The file behind a link (the transport lets only https ones through), streamed and cut off past `max_bytes` (MediaRefused), through the
    egress guard (a link to the platform's own network is refused) within `timeout` seconds in all."""
    try:
        egress.check_url(link, base=False)
        with (
            egress.deadline(time.monotonic() + timeout),
            egress.client(timeout=timeout) as client,
            client.stream("GET", link) as response,
        ):
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise LinkFailed(f"the link answered HTTP {response.status_code}")
            if response.status_code != 200:
                raise MediaRefused(f"the link answered HTTP {response.status_code}")
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise MediaRefused(f"larger than {size_label(max_bytes)} ({declared} bytes)")
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise MediaRefused(f"larger than {size_label(max_bytes)}")
                chunks.append(chunk)
            mime_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    except egress.EgressRefused as exc:
        raise MediaRefused(f"the link is not one the platform may fetch: {exc.message}") from exc
    except httpx.HTTPError as exc:
        raise LinkFailed(f"the link could not be fetched: {type(exc).__name__}") from exc
    filename = Path(httpx.URL(link).path).name
    return MediaFile(
        content=b"".join(chunks), mime_type=mime_type or "application/octet-stream", filename=filename
    )
