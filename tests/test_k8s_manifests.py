"""The Kubernetes manifests (deploy/k8s, issue 18 item 5): every built-in object validates against the
Kubernetes API's own schemas (kubernetes-validate, strict: an unknown field fails), the KEDA scalers name
real Deployments and Celery queues, and the layout is docker-compose's: the same queue groups and pools,
probes and resource requests everywhere, one beat, migrations as a Job that every pod waits for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from celery_app import QUEUES
from tests.test_worker_layout import _celery_workers, _compose

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.31.0", "1.34.0")  # the oldest Kubernetes still supported upstream, and a recent one
BUILT_IN = ("v1", "apps/v1", "batch/v1", "policy/v1")
POD_OWNERS = ("Deployment", "StatefulSet", "Job")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _applied() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _documents(K8S / name)]


def _kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _applied() if doc["kind"] == kind}


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def test_the_kustomization_applies_every_manifest_but_the_secrets_template():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])

    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    secret = _documents(K8S / "secret.example.yaml")[0]
    assert all(
        value.startswith(("<", "postgres://", "redis://", "chat.", "https://chat."))
        for value in secret["stringData"].values()
    )
    assert all("<" in value for key, value in secret["stringData"].items() if "SECRET" in key or "KEY" in key)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_built_in_object_validates_against_the_kubernetes_schemas(version):
    checked = 0
    for path in sorted(K8S.glob("*.yaml")):
        for doc in _documents(path):
            if doc["apiVersion"] in BUILT_IN:
                kubernetes_validate.validate(doc, version, strict=True)  # raises on any error
                checked += 1

    assert checked >= 20


def test_the_validator_refuses_a_broken_manifest():
    web = copy.deepcopy(_kind("Deployment")["web"])
    web["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, VERSIONS[0], strict=True)
    web = copy.deepcopy(_kind("Deployment")["web"])
    _pod(web)["containers"][0]["livenesProbe"] = {}  # a typo: strict mode refuses unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, VERSIONS[0], strict=True)


def test_the_workers_are_composes_queue_groups_with_the_same_pools():
    commands = {
        name: " ".join(_pod(doc)["containers"][0]["command"])
        for name, doc in {**_kind("Deployment"), **_kind("StatefulSet")}.items()
    }
    k8s = _celery_workers(commands)
    compose = _compose()

    assert k8s == compose  # same names, queues, pools and concurrency
    assert set().union(*(queues for queues, _, _ in k8s.values())) == set(QUEUES)
    llm_env = {e["name"]: e["value"] for e in _pod(_kind("Deployment")["worker-llm"])["containers"][0]["env"]}
    assert llm_env["DB_POOL_SIZE"] == "16"


def test_every_pod_has_probes_requests_a_non_root_user_and_waits_for_the_migrations():
    owners = {**_kind("Deployment"), **_kind("StatefulSet")}
    assert set(owners) >= {"web", "ws", "beat", "worker-web", "worker-llm"}
    for name, doc in owners.items():
        pod = _pod(doc)
        container = pod["containers"][0]
        assert (
            pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        ), name
        assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"], (
            name
        )
        assert container["resources"]["limits"]["memory"], name
        assert "livenessProbe" in container, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert "migrate --check" in " ".join(pod["initContainers"][0]["command"]), name
        if name.startswith("worker"):
            # Longer than a reply's budget (20 s) and a WhatsApp Web send (60 s), as compose's grace period.
            assert pod["terminationGracePeriodSeconds"] >= 90, name
    for name in ("web", "ws"):
        assert _pod(owners[name])["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/readyz"
    job = _kind("Job")["migrate"]
    assert "migrate --noinput" in " ".join(_pod(job)["containers"][0]["command"])


def test_one_beat_replaced_never_doubled_and_a_disruption_budget_for_the_rest():
    deployments = _kind("Deployment")
    beat = deployments["beat"]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"] == {"type": "Recreate"}

    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]
        for doc in _kind("PodDisruptionBudget").values()
    }
    assert budgets == (set(deployments) - {"beat"}) | {"worker-web"}


def test_worker_web_keeps_each_pods_browser_profiles_on_its_own_volume():
    sts = _kind("StatefulSet")["worker-web"]
    mounts = {m["name"]: m["mountPath"] for m in _pod(sts)["containers"][0]["volumeMounts"]}

    assert mounts["profiles"] == "/app/data/whatsapp_web"
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["profiles"]
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "whatsapp-ai-platform-web"
    # WhatsApp Web's files, on one ReadWriteMany claim: received media written by worker-web and served
    # by web; files staff upload to send written by web (its outbox) and sent by worker-web.
    assert mounts["web-media"] == "/app/data/whatsapp_web_media"
    web = _pod(_kind("Deployment")["web"])
    [media] = [m for m in web["containers"][0]["volumeMounts"] if m["name"] == "web-media"]
    assert media == {"name": "web-media", "mountPath": "/app/data/whatsapp_web_media"}
    assert _kind("PersistentVolumeClaim")["whatsapp-web-media"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_keda_scales_workers_on_their_celery_queue_lengths():
    deployments = _kind("Deployment")
    scalers = _kind("ScaledObject")
    assert set(scalers) == {"worker-inbound", "worker-llm", "worker-outbound", "worker"}
    for name, scaler in scalers.items():
        assert scaler["apiVersion"] == "keda.sh/v1alpha1"
        target = scaler["spec"]["scaleTargetRef"]["name"]
        assert target in deployments
        queues = _celery_workers({target: " ".join(_pod(deployments[target])["containers"][0]["command"])})[
            target
        ][0]
        [trigger] = scaler["spec"]["triggers"]
        assert trigger["type"] == "redis"
        meta = trigger["metadata"]
        assert meta["listName"] in queues, (
            name
        )  # Celery's Redis transport: one list per queue, named after it
        assert (
            int(meta["listLength"]) > 0
            and meta["addressFromEnv"] in _kind("ConfigMap")["chatbot-config"]["data"]
        )
        assert 1 <= scaler["spec"]["minReplicaCount"] <= scaler["spec"]["maxReplicaCount"]
