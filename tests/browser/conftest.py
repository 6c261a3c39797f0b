"""A real stack for browser tests: PostgreSQL + Redis, the Graph API stand-in posting signed webhooks to
a live Django server, a Celery worker subprocess on the test database, daphne for WebSockets, and
Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection

from standins.graph import GraphStandIn

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SANDBOX_SECRET = "browser-sandbox-secret"


def wait_for(check: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {check.__doc__ or check}")


def _missing(what: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (REQUIRE_SERVICES=1)")
    pytest.skip(f"needs {what}")


@pytest.fixture(autouse=True)
def _sync_db_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
    # are still plain synchronous ones, so Django's async-safety guard must stand aside.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _process_env(redis_url: str, graph_url: str, data_dir: Path) -> dict[str, str]:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "WHATSAPP_GRAPH_URL": graph_url,
        "WHATSAPP_SANDBOX_GRAPH_URL": graph_url,
        "SANDBOX_APP_SECRET": SANDBOX_SECRET,
        "FERNET_KEYS": ",".join(django_settings.FERNET_KEYS),
        "AI_FALLBACK_ORDER": "",
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(data_dir),
        "EGRESS_ALLOWED_NETWORKS": "127.0.0.1",  # the stand-ins a test may point a workspace at
    }


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.kill()  # the test has asserted: a graceful shutdown would only wait out work in progress
    proc.wait(timeout=10)
    print(log.read_text()[-6000:])  # shown by pytest when the test failed


@pytest.fixture
def sandbox_standin(settings: Any) -> Iterator[GraphStandIn]:
    """The Graph API stand-in that sandbox channels use (in this process and in the worker)."""
    standin = GraphStandIn().start()
    settings.WHATSAPP_GRAPH_URL = standin.url
    settings.WHATSAPP_SANDBOX_GRAPH_URL = standin.url
    settings.SANDBOX_APP_SECRET = SANDBOX_SECRET
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def worker(postgres: None, redis_url: str, sandbox_standin: GraphStandIn, tmp_path: Path) -> Iterator[None]:
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            *("-m", "celery", "-A", "celery_app", "worker", "-Q", "inbound,llm,outbound,campaigns,default"),
            *("-P", "threads", "-c", "4", "--without-heartbeat", "--without-gossip", "--without-mingle"),
            *("-l", "INFO"),
        ],
        cwd=ROOT,
        env=_process_env(redis_url, sandbox_standin.url, tmp_path),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # The first task must not race the worker's start-up (it imports litellm before it is ready).
    wait_for(lambda: "ready." in log_path.read_text(), timeout=120)
    yield
    _stop(proc, log_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ws_server(postgres: None, redis_url: str, sandbox_standin: GraphStandIn, tmp_path: Path) -> Iterator[str]:
    """daphne serving the ASGI app (WebSockets) on the test database; yields its ws:// base URL."""
    port = _free_port()
    log_path = tmp_path / "daphne.log"
    log = log_path.open("w")
    # Production settings take a WebSocket only from https pages or trusted origins; the pages here
    # are plain http from daphne itself.
    env = {
        **_process_env(redis_url, sandbox_standin.url, tmp_path),
        "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "chatbot.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        """daphne listens"""
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=60)
    yield f"ws://127.0.0.1:{port}"
    _stop(proc, log_path)


@pytest.fixture
def stack(
    worker: None, sandbox_standin: GraphStandIn, live_server: Any
) -> Iterator[tuple[str, GraphStandIn]]:
    """The live server's URL and the stand-in, which posts its webhooks to that server."""
    sandbox_standin.configure_webhooks(f"{live_server.url}/webhooks/whatsapp/", SANDBOX_SECRET)
    yield live_server.url, sandbox_standin


@pytest.fixture
def browser() -> Iterator[Any]:
    if not shutil.which("chromium") and not Path(CHROMIUM).exists():
        _missing("Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    return path
