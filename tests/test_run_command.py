"""The README's run command on a fresh data folder with the embedded defaults (SQLite, the
filesystem broker, no Redis): a customer's message reaches the bot and its answer reaches the
Graph API stand-in, every process started by `make run` taking part."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a fresh machine does not have: servers, secrets, modes. The run command must need none of them.
SERVER_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SECRET_KEY",
    "JWT_SECRET",
    "FERNET_KEYS",
    "SANDBOX_APP_SECRET",
    "DEBUG",
    "LOG_LEVEL",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - local stand-in
        return json.loads(response.read() or b"null")


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(  # noqa: S310 - local stand-in
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def _wait(check: Any, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout:.0f} s; make run printed:\n{log.read_text()[-6000:]}")


@pytest.mark.slow
def test_make_run_answers_a_sandbox_customer_on_the_embedded_defaults(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    web, ws, graph = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        ENV_FILE=str(tmp_path / ".env"),
        WEB_PORT=str(web),
        WS_PORT=str(ws),
        GRAPH_PORT=str(graph),
        WHATSAPP_SANDBOX_GRAPH_URL=f"http://127.0.0.1:{graph}",
        ADMIN_PASSWORD="a-long-enough-admin-passphrase",
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        # A session of its own, so the whole process tree stops with it (as Ctrl-C would).
        proc = subprocess.Popen(  # noqa: S603
            ["make", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait(lambda: "ready." in log.read_text(), 180, "the worker", log)
        _wait(lambda: _get(f"http://127.0.0.1:{web}/healthz"), 60, "the web process", log)
        _wait(
            lambda: _get(f"http://127.0.0.1:{graph}/_standin/sent") is not None, 60, "the Graph stand-in", log
        )

        delivery = _post(
            f"http://127.0.0.1:{graph}/_standin/inbound",
            {
                "phone_number_id": "sandbox-1",
                "from": "34600111222",
                "name": "Ana",
                "text": "¿A qué hora abrís?",
            },
        )
        sent = _wait(
            lambda: _get(f"http://127.0.0.1:{graph}/_standin/sent")["sent"], 90, "the bot's reply", log
        )

        assert delivery["status_code"] == 200, delivery  # the signed webhook was accepted
        assert sent[0]["to"] == "34600111222"
        assert "8:00" in json.dumps(sent[0], ensure_ascii=False)  # the demo FAQ's answer, opening hours
        assert (tmp_path / "data" / "db.sqlite3").exists()  # SQLite under DATA_DIR, no server
        printed = log.read_text()
        assert f"http://127.0.0.1:{web}/sandbox/" in printed
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
