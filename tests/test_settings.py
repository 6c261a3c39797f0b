"""Start-up rules, checked by starting real processes with a given environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "DEBUG": "0",
    "DJANGO_SECRET_KEY": "prod-like-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
    "JWT_SECRET": "prod-like-jwt-secret-0123456789-abcdefghij",
}


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SECRET_KEY", "JWT_SECRET", "DEBUG", "FERNET_KEYS", "SANDBOX_APP_SECRET"}
    }
    base.update({"ENV_FILE": str(tmp_path / ".env"), "DATA_DIR": str(tmp_path / "data")})
    base.pop("SECURE_SSL_REDIRECT", None)
    base.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_a_short_jwt_secret_with_one_clear_line(tmp_path):
    result = run_manage(tmp_path, "check", **{**GOOD, "JWT_SECRET": "too-short"})

    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: JWT_SECRET must be at least 32 characters, got 9"


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "JWT_SECRET"])
def test_production_refuses_a_missing_secret_naming_it(tmp_path, missing):
    env = {k: v for k, v in GOOD.items() if k != missing}

    result = run_manage(tmp_path, "check", **env)

    assert result.returncode == 1
    assert result.stderr.strip() == f"configuration error: {missing} is not set (required when DEBUG is off)"
    assert not (tmp_path / ".env").exists()  # production never writes secrets


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    result = run_manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **GOOD)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_development_generates_secrets_once_into_a_private_env_file(tmp_path):
    first = run_manage(tmp_path, "check", DEBUG="1")
    written = (tmp_path / ".env").read_text()
    second = run_manage(tmp_path, "check", DEBUG="1")

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    names = [line.split("=", 1)[0] for line in written.splitlines() if "=" in line]
    assert names == ["DJANGO_SECRET_KEY", "JWT_SECRET", "FERNET_KEYS", "SANDBOX_APP_SECRET"]
    assert (tmp_path / ".env").read_text() == written  # the second start reused them
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_loopback_hosts_stay_allowed_for_health_checks_whatever_allowed_hosts_says(tmp_path):
    code = "from django.conf import settings; print(' '.join(settings.ALLOWED_HOSTS))"

    result = run_manage(tmp_path, "shell", "-c", code, **{**GOOD, "ALLOWED_HOSTS": "chat.example.com"})

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "chat.example.com",
        "localhost",
        "127.0.0.1",
        "[::1]",
    ]


def test_production_refuses_to_start_without_a_metrics_token(tmp_path):
    result = run_manage(tmp_path, "check", **{**GOOD, "METRICS_TOKEN": ""})

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "configuration error: METRICS_TOKEN is not set (required when DEBUG is off; "
        "METRICS_PUBLIC=1 serves /metrics without one)"
    )


def test_production_refuses_a_short_metrics_token(tmp_path):
    result = run_manage(tmp_path, "check", **{**GOOD, "METRICS_TOKEN": "short"})

    assert result.returncode == 1
    assert result.stderr.strip() == "configuration error: METRICS_TOKEN must be at least 16 characters, got 5"


def test_metrics_public_is_the_explicit_opt_out(tmp_path):
    result = run_manage(tmp_path, "check", **{**GOOD, "METRICS_TOKEN": "", "METRICS_PUBLIC": "1"})

    assert result.returncode == 0, result.stderr


POOLED_THREADS = """
import threading
from django.db import connection, connections

def work():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(0.05)")
    connections.close_all()  # what Celery does after each task: the connection goes back

threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", ["pool-test"]
    )
    print(connection.settings_dict["CONN_MAX_AGE"], connection.pool.max_size, cursor.fetchone()[0])
"""


def test_a_pooled_process_shares_db_pool_size_connections_among_its_threads(tmp_path, postgres):
    """The llm worker's setting (docker-compose): 12 threads, each reading once, through 3 connections."""
    url = os.environ["DATABASE_URL"]
    separator = "&" if "?" in url else "?"
    result = run_manage(
        tmp_path,
        "shell",
        "-c",
        POOLED_THREADS,
        **{**GOOD, "DATABASE_URL": f"{url}{separator}application_name=pool-test", "DB_POOL_SIZE": "3"},
    )

    assert result.returncode == 0, result.stderr
    max_age, max_size, backends = result.stdout.strip().splitlines()[-1].split()
    assert (max_age, max_size) == ("0", "3")
    assert 1 <= int(backends) <= 3  # without the pool: a backend per thread (12)


SERVER_SIDE_CURSOR = """
from django.db import connection, models, transaction

class Probe(models.Model):  # a throwaway table, rolled back: the database may not be migrated
    class Meta:
        app_label = "audit"
        db_table = "settings_probe_cursor"

with transaction.atomic():
    with connection.schema_editor() as editor:
        editor.create_model(Probe)
    Probe.objects.bulk_create([Probe() for _ in range(30)])
    rows = Probe.objects.all().iterator(chunk_size=10)
    next(rows)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name <> ''")
        print(connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"], cursor.fetchone()[0])
    transaction.set_rollback(True)
"""


@pytest.mark.parametrize(("value", "expected"), [("0", "False"), ("1", "True")])
def test_pgbouncer_transaction_pooling_can_turn_named_cursors_off(tmp_path, postgres, value, expected):
    """docs/deployment.md: behind PgBouncer's transaction pooling, DB_DISABLE_SERVER_SIDE_CURSORS=1."""
    result = run_manage(
        tmp_path, "shell", "-c", SERVER_SIDE_CURSOR, **{**GOOD, "DB_DISABLE_SERVER_SIDE_CURSORS": value}
    )

    assert result.returncode == 0, result.stderr
    disabled, named_cursors = result.stdout.strip().splitlines()[-1].split()
    assert (disabled, named_cursors) == (expected, "0" if expected == "True" else "1")
