"""The operators' files in deploy/ (issue 14 item 8): every series the Prometheus alert rules and the
Grafana dashboard use is one /metrics really shows, so a renamed metric breaks this test, not an alert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
SERIES = re.compile(r"\b((?:chatbot|django)_[a-z0-9_]+)\b")
SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def _exported(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _family(name: str, families: set[str]) -> bool:
    return name in families or any(name.endswith(s) and name.removesuffix(s) in families for s in SUFFIXES)


def _rule_exprs() -> list[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _panel_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "deploy/grafana/chatbot-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.django_db
@pytest.mark.parametrize("source", ["alert rules", "dashboard"])
def test_every_series_the_operator_files_use_is_exported(source, metrics_client):
    Client().get("/healthz")  # the per-view request series get their first sample
    families = _exported(metrics_client.get("/metrics").content.decode())
    exprs = _rule_exprs() if source == "alert rules" else _panel_exprs()

    used = {name for expr in exprs for name in SERIES.findall(expr)}

    assert len(exprs) >= 8 and used
    assert sorted(name for name in used if not _family(name, families)) == []


def test_the_alert_rules_cover_what_operators_asked_for():
    text = "\n".join(_rule_exprs())
    for series in (
        "chatbot_celery_queue_depth",  # queue backlog
        "chatbot_conversations_inbound_set_aside_total",  # set-aside messages
        "chatbot_circuit_state",  # breaker open
        "chatbot_outbound_failed_total",  # delivery failures
        'view="whatsapp-webhook"',  # webhook errors
    ):
        assert series in text


def _failed_count(reason: str) -> float:
    from apps.conversations import metrics

    samples = metrics.OUTBOUND_FAILED.collect().samples
    return sum(s.value for s in samples if s.labels.get("reason") == reason)


@pytest.mark.django_db
def test_a_message_failed_for_good_is_counted_once_by_reason(tasks_captured):
    from apps.conversations.services import outbound
    from apps.conversations.tests.factories import outbound_message

    message = outbound_message(send_state="processing")
    before = _failed_count("opted_out")

    outbound._fail(message, reason="opted_out", detail="not sent: opted_out")
    outbound._fail(message, reason="opted_out", detail="again")  # already failed: not counted twice

    assert _failed_count("opted_out") == before + 1
