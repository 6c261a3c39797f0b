"""The shipped worker layout (docker-compose, the Procfile of `make run`): the llm queue has workers of its
own on a thread pool holding at least 100 calls in flight, and no worker that takes LLM calls also takes
inbound or outbound work, so a customer's message and its send never wait behind a model."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _expand(command: str) -> list[str]:
    """The command as its shell runs it with the defaults: ${NAME:-default} -> default."""
    return shlex.split(re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", command))


def _option(argv: list[str], flag: str, default: str = "") -> str:
    return argv[argv.index(flag) + 1] if flag in argv else default


def _celery_workers(commands: dict[str, str]) -> dict[str, tuple[set[str], str, int]]:
    """name -> (queues, pool, concurrency) of every `celery worker` command."""
    workers = {}
    for name, command in commands.items():
        argv = _expand(command)
        if "worker" not in argv or not any(a.endswith("celery") for a in argv):
            continue
        queues = set(_option(argv, "-Q", "default").split(","))
        workers[name] = (
            queues,
            _option(argv, "-P", "prefork"),
            int(_option(argv, "-c", str(os.cpu_count()))),
        )
    return workers


def _compose() -> dict[str, tuple[set[str], str, int]]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return _celery_workers({name: s["command"] for name, s in services.items() if "command" in s})


def _procfile() -> dict[str, tuple[set[str], str, int]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return _celery_workers(dict(line.split(": ", 1) for line in lines if ": " in line))


def test_compose_gives_the_llm_queue_its_own_thread_pool_of_at_least_100():
    workers = _compose()

    llm = [w for w in workers.values() if "llm" in w[0]]
    assert llm == [({"llm"}, "threads", 100)]
    served = set().union(*(queues for queues, _, _ in workers.values()))
    assert {"inbound", "llm", "outbound", "campaigns", "default"} <= served
    assert [name for name, w in workers.items() if "inbound" in w[0]] == ["worker-inbound"]
    assert [name for name, w in workers.items() if "outbound" in w[0]] == ["worker-outbound"]


def test_the_llm_workers_threads_share_a_bounded_pool_of_database_connections():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    # 100 threads, far fewer connections (tests/test_settings.py checks what the setting does).
    assert 0 < int(services["worker-llm"]["environment"]["DB_POOL_SIZE"]) <= 25


def test_make_run_keeps_llm_calls_on_a_thread_pool_apart_from_inbound_and_outbound():
    workers = _procfile()

    llm = [w for w in workers.values() if "llm" in w[0]]
    assert llm == [({"llm"}, "threads", 100)]
    served = set().union(*(queues for queues, _, _ in workers.values()))
    assert {"inbound", "llm", "outbound", "campaigns", "default", "local_models"} <= served
