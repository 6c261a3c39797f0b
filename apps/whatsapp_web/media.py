"""The store of media received on WhatsApp Web: WhatsApp Web hands a message's file to the browser when it
arrives (the Cloud API keeps it for us to fetch later; WhatsApp Web may not), so worker-web downloads it
through the bridge at once and keeps it under WHATSAPP_WEB_MEDIA_DIR/channel-<id>/, named by a hash of
the message id, with its type beside it. The `web` transport's fetch_media reads it back, so the API and
the inbox serve it as they serve Cloud media.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from django.conf import settings

from apps.conversations.transport import MediaFile

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
