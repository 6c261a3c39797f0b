"""The first run as a newcomer meets it (issue 17): `git clone`, then `make run` with empty package
caches, until the sandbox's customer gets the demo bot's answer. Reported, not asserted.

Each phase is timed: the clone, the virtual environment and its packages (uv), migrations, bootstrap
and demo seed, the processes starting, and the first answer. Needs git, make and network access to
PyPI; uses free ports and a temporary folder, so it runs beside a development server.

Usage: python bench/first_run.py [--repo PATH] [--name first-run]
Writes bench/results/<name>.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVER_VARIABLES = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SECRET_KEY", "JWT_SECRET")
MARKS = {  # what `make run` prints when a phase is over
    "virtual environment": "== [setup] uv",
    "packages (uv)": "Installed ",
    "migrations and bootstrap": "created user",
    "demo seeded": "dashboard   http",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local processes
        return json.loads(response.read() or b"null")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", default=str(ROOT))
    parser.add_argument("--name", default="first-run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="first-run-"))
    web, ws, graph = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    env.update(
        PIP_CACHE_DIR=str(work / "pip-cache"),  # empty caches: what a new machine has
        UV_CACHE_DIR=str(work / "uv-cache"),
        WEB_PORT=str(web),
        WS_PORT=str(ws),
        GRAPH_PORT=str(graph),
        WHATSAPP_SANDBOX_GRAPH_URL=f"http://127.0.0.1:{graph}",
    )
    started = time.monotonic()
    phases: dict[str, float] = {}
    subprocess.run(["git", "clone", "-q", args.repo, str(work / "app")], check=True)  # noqa: S603, S607
    phases["git clone"] = time.monotonic() - started
    log = work / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(  # noqa: S603
            ["make", "run"],  # noqa: S607
            cwd=work / "app",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # noqa: S607
        )
    try:
        pending = dict(MARKS)
        deadline = started + 600
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            for phase, mark in list(pending.items()):
                if mark in text:
                    phases[phase] = time.monotonic() - started
                    del pending[phase]
            if "web answers" not in phases:
                try:
                    _json(f"http://127.0.0.1:{web}/healthz")
                    phases["web answers"] = time.monotonic() - started
                    _json(
                        f"http://127.0.0.1:{graph}/_standin/inbound",
                        {
                            "phone_number_id": "sandbox-1",
                            "from": "34600111222",
                            "name": "Ana",
                            "text": "¿A qué hora abrís?",
                        },
                    )
                except OSError:
                    pass
            elif sent := _json(f"http://127.0.0.1:{graph}/_standin/sent")["sent"]:
                answer = sent[0]
                phases["the bot answered the sandbox customer"] = time.monotonic() - started
                break
            time.sleep(0.25)
        if answer is None:
            raise SystemExit(f"no answer within 600 s; make run printed:\n{log.read_text()[-4000:]}")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    command = "python bench/first_run.py " + " ".join(sys.argv[1:])
    lines = [
        f"`{command}` (git clone to the demo bot's first answer, empty package caches):",
        "",
        "| phase over | seconds from the start |",
        "|---|---|",
        *(f"| {phase} | {seconds:.1f} |" for phase, seconds in sorted(phases.items(), key=lambda p: p[1])),
    ]
    print("\n".join(lines))
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    (out_dir / f"{args.name}.json").write_text(json.dumps(phases, indent=2) + "\n")


if __name__ == "__main__":
    main()
