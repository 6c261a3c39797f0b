"""Which pages may open the live WebSocket (issue 10, item 9): in production only the host's own
https origin and CSRF_TRUSTED_ORIGINS; `http://localhost:<port>` only with DEBUG."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from apps.accounts.tests.factories import MembershipFactory
from chatbot.ws_origin import origin_allowed

ROOT = Path(__file__).resolve().parents[1]
TRUSTED = "https://app.example.com"


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("https://chat.example.com", "chat.example.com", True),  # the host's own https origin
        ("http://chat.example.com", "chat.example.com", False),  # ... over https only
        ("https://app.example.com", "chat.example.com", True),  # listed in CSRF_TRUSTED_ORIGINS
        ("https://eu.partner.example", "chat.example.com", True),  # matches https://*.partner.example
        ("https://partner.example.evil.test", "chat.example.com", False),
        ("http://localhost:5173", "chat.example.com", False),
        ("http://localhost:8000", "localhost:8000", False),  # not even the host's own, over http
        ("https://evil.test", "evil.test", False),  # a Host outside ALLOWED_HOSTS vouches for nothing
        ("null", "chat.example.com", False),
        ("", "chat.example.com", False),
    ],
)
def test_production_accepts_only_the_hosts_https_origin_and_trusted_origins(settings, origin, host, allowed):
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["chat.example.com", "localhost"]
    settings.CSRF_TRUSTED_ORIGINS = [TRUSTED, "https://*.partner.example"]

    assert origin_allowed(origin=origin, host=host) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:3000", True),
        ("https://evil.test", False),
    ],
)
def test_debug_also_accepts_loopback_pages_on_any_port(settings, origin, allowed):
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.CSRF_TRUSTED_ORIGINS = []

    assert origin_allowed(origin=origin, host="localhost:8001") is allowed


# --- a real handshake against daphne serving chatbot.asgi ------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def daphne(postgres: None, redis_url: str, tmp_path: Path) -> Iterator[int]:
    """daphne in production mode on the test database; yields its port."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    port = _free_port()
    log_path = tmp_path / "daphne.log"
    env = {
        **os.environ,
        "DEBUG": "0",
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "chat.example.com",
        "CSRF_TRUSTED_ORIGINS": TRUSTED,
        "DATA_DIR": str(tmp_path),
    }
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatbot.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        print(log_path.read_text()[-4000:])


def handshake(port: int, *, origin: str, cookie: str, host: str = "chat.example.com") -> int:
    """Send a browser's WebSocket upgrade; the HTTP status daphne answers (101 = open)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws/live/ HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
        f"Cookie: {cookie}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_foreign_page_cannot_open_a_logged_in_members_socket(daphne):
    # Given a member logged in to the dashboard (their browser holds the session cookie)
    membership = MembershipFactory.create()
    client = Client()
    client.force_login(membership.user)
    cookie = (
        f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    )

    # When pages of several origins open the socket with that cookie
    statuses = {
        origin: handshake(daphne, origin=origin, cookie=cookie)
        for origin in ("https://evil.test", "http://localhost:5173", "https://chat.example.com", TRUSTED)
    }

    # Then only the site itself and the trusted origin get through
    assert statuses == {
        "https://evil.test": 403,
        "http://localhost:5173": 403,
        "https://chat.example.com": 101,
        TRUSTED: 101,
    }
