"""The compose stack exposes only its proxy, and only the proxy may say a request came over HTTPS."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "::1", "[::1]"}
PROXY_PORTS = {"80", "443"}


def _published(port: str | int | dict) -> tuple[str, str]:
    """(host address, host port) of one `ports:` entry, short or long syntax; "" is every interface."""
    if isinstance(port, dict):
        return str(port.get("host_ip", "")), str(port.get("published", ""))
    spec = str(port).split("/")[0]
    if spec.startswith("["):  # [::1]:8000:8000
        address, _, rest = spec[1:].partition("]:")
        return address, rest.split(":")[0]
    parts = spec.split(":")
    if len(parts) == 3:
        return parts[0], parts[1]
    return "", parts[0]  # "8000:8000" or "8000": Docker binds 0.0.0.0


def test_compose_binds_nothing_to_every_interface_but_the_proxys_80_and_443():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    exposed = {
        (name, *_published(port))
        for name, service in services.items()
        for port in service.get("ports", [])
        if _published(port)[0] not in LOOPBACK
    }

    assert exposed == {("proxy", "", "80"), ("proxy", "", "443")}
    assert services["web"]["ports"] == ["127.0.0.1:8000:8000"]
    assert "ports" not in services["ws"]
    # web trusts forwarded headers from the proxy's fixed address alone.
    proxy_ip = services["proxy"]["networks"]["default"]["ipv4_address"]
    assert services["web"]["environment"]["FORWARDED_ALLOW_IPS"] == proxy_ip == "${PROXY_IP:-172.31.240.10}"


def test_the_parser_sees_a_bare_port_as_every_interface():
    assert [_published(p) for p in ("8000:8000", "8001", "0.0.0.0:8000:8000", "127.0.0.1:8000:8000")] == [
        ("", "8000"),
        ("", "8001"),
        ("0.0.0.0", "8000"),  # noqa: S104 - the value under test
        ("127.0.0.1", "8000"),
    ]
    assert _published({"target": 8000, "published": 8000}) == ("", "8000")
    assert _published("[::1]:8000:8000") == ("::1", "8000")


# --- a real gunicorn: X-Forwarded-Proto counts only from FORWARDED_ALLOW_IPS ---------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _gunicorn(tmp_path: Path, forwarded_allow_ips: str) -> Iterator[int]:
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "1",
        "ENV_FILE": "/dev/null",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "DATA_DIR": str(tmp_path),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_WORKERS": "1",
        "WEB_THREADS": "2",
        "FORWARDED_ALLOW_IPS": forwarded_allow_ips,
    }
    log = (tmp_path / f"gunicorn-{port}.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "chatbot.wsgi", "--config", "chatbot/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / f"gunicorn-{port}.log").read_text()) from None
                time.sleep(0.2)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": "localhost", **headers})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.slow
def test_a_direct_client_claiming_https_is_not_believed_but_the_trusted_proxy_is(tmp_path):
    claim = {"X-Forwarded-Proto": "https"}

    # The proxy is elsewhere (192.0.2.10): this client, on 127.0.0.1, talks to gunicorn directly.
    with _gunicorn(tmp_path, forwarded_allow_ips="192.0.2.10") as port:
        direct = _get(port, "/api/auth/me", claim)
    # The same request from the trusted proxy's address.
    with _gunicorn(tmp_path, forwarded_allow_ips="127.0.0.1") as port:
        proxied = _get(port, "/api/auth/me", claim)
        plain = _get(port, "/api/auth/me", {"X-Forwarded-Proto": "http"})

    # Not secure: sent to HTTPS like any plain request (no HSTS either).
    assert (direct.status, direct.getheader("Location")) == (301, "https://localhost/api/auth/me")
    assert direct.getheader("Strict-Transport-Security") is None
    # Secure: reaches the API, which wants a login, and gets HSTS.
    assert proxied.status == 401
    assert proxied.getheader("Strict-Transport-Security") is not None
    assert plain.status == 301


def test_the_development_lock_holds_every_runtime_pin_at_the_same_version():
    # `make test` installs only the development lock and marks the runtime one installed too (Makefile).
    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text().splitlines()
        found = (line.split(" ")[0].split("==") for line in lines if line[:1].isalnum() and "==" in line)
        return {package: version for package, version in found}

    runtime, development = pins("requirements.lock"), pins("requirements-dev.lock")

    assert runtime and {p: development.get(p) for p in runtime} == runtime
    assert all(
        "--hash=sha256:" in (ROOT / name).read_text()
        for name in ("requirements.lock", "requirements-dev.lock")
    )


def test_every_app_service_waits_for_the_migrations_and_may_finish_its_work_when_stopped():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    app = {name: service for name, service in services.items() if service.get("env_file") == ".env"}

    assert "migrate" in app and {"web", "ws", "beat", "worker-web"} <= set(app)
    for name, service in app.items():
        waits = service["depends_on"]
        if name == "migrate":
            assert "migrate" not in waits
            continue
        assert waits["migrate"] == {"condition": "service_completed_successfully"}, name
        seconds = int(str(service["stop_grace_period"]).removesuffix("s"))
        assert seconds > 60, name  # a WhatsApp Web send's time limit, and a reply's budget


def _dockerfile_stages() -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """The Dockerfile's global ARG defaults, each stage's instructions (continuations joined) and each
    stage's base (ARGs resolved)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    args: dict[str, str] = {}
    stages: dict[str, list[str]] = {}
    bases: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "ARG" and not current:
            name, _, default = rest.partition("=")
            args[name] = default
        elif word == "FROM":
            image, _, current = rest.partition(" AS ")
            bases[current] = args.get(image.strip("${}"), image) if image.startswith("${") else image
            stages[current] = []
        else:
            stages[current].append(line)
    return args, stages, bases


def test_the_image_builds_from_digest_pinned_bases_in_stages_and_runs_as_a_user_who_cannot_write_the_code():
    _, stages, bases = _dockerfile_stages()

    for stage, base in bases.items():
        pinned = re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", base)
        assert pinned or base in stages, f"{stage}: {base} is neither pinned by digest nor a stage"
    # Only the build stage installs Python packages, from the lock file, every one checked by its hash.
    installs = {stage: [i for i in lines if "pip install" in i] for stage, lines in stages.items()}
    assert [stage for stage, found in installs.items() if found] == ["build"]
    assert all("--require-hashes -r /tmp/requirements.lock" in i for i in installs["build"])
    assert "COPY --from=build /opt/venv /opt/venv" in stages["base"]
    for stage in ("base", "worker-web"):
        users = [i for i in stages[stage] if i.startswith("USER ")]
        assert users[-1] == "USER app", stage
    # The code is copied as root, before the switch to the run-time user; only data folders are its.
    copies = [i for i in stages["base"] if i.startswith("COPY . ")]
    assert copies == ["COPY . ."]
    assert stages["base"].index("COPY . .") < stages["base"].index("USER app")
    assert not [i for i in stages["base"] + stages["worker-web"] if "--chown" in i]
    chowned = [i for i in stages["base"] + stages["worker-web"] if "chown" in i]
    owned = [path for i in chowned for path in re.findall(r"chown app:app ((?:/\S+ ?)+)", i)[0].split()]
    assert owned and all(path.startswith("/app/data") for path in owned), owned
    assert bases["app"] == "base" and bases["worker-web"] == "base"
