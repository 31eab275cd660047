"""Kubernetes manifests, parsed: probes, ports, limits, and the objects point at each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.policy.load import load_policy, parse_policy
from tests.deploy.support import K8S


def manifests() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text("utf-8")):
            docs[doc["kind"]] = doc
    return docs


def container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = manifests()["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ]
    (c,) = containers
    return c


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_all_required_objects_are_there_and_kustomize_lists_them() -> None:
    docs = manifests()
    assert {
        "Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Kustomization",
    } <= set(docs)  # fmt: skip
    listed = set(docs["Kustomization"]["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_deployment_probes_ports_limits_and_security() -> None:
    c = container()
    assert c["image"]
    assert ":" in c["image"]
    assert not c["image"].endswith(":latest")
    (port,) = c["ports"]
    assert port == {"name": "http", "containerPort": 8080, "protocol": "TCP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    res = c["resources"]
    assert res["limits"]["cpu"]
    assert res["limits"]["memory"]
    assert res["requests"]["cpu"], "the HPA computes utilisation against the CPU request"
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    env = env_of(c)
    assert env["HARVEST_GATEWAY_HOST"] == "0.0.0.0"
    assert env["HARVEST_GATEWAY_PORT"] == str(port["containerPort"])


def test_deployment_waits_out_the_queue_before_killing_a_pod() -> None:
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    shutdown = float(env_of(container())["HARVEST_GATEWAY_SHUTDOWN_TIMEOUT"])
    policy = parse_policy(manifests()["ConfigMap"]["data"]["policy.toml"])
    assert pod["terminationGracePeriodSeconds"] > shutdown + policy.queue.max_wait


def test_policy_configmap_is_a_valid_policy_mounted_where_the_gateway_reads_it(
    tmp_path: Path,
) -> None:
    cm = manifests()["ConfigMap"]
    (key,) = cm["data"]
    policy_file = tmp_path / key
    policy_file.write_text(cm["data"][key], "utf-8")
    policy = load_policy(policy_file)
    shipped = load_policy(None)
    assert policy.quotas == shipped.quotas  # a copy of the shipped Harvest limits
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if "configMap" in v]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == vol["name"]]
    assert env_of(container())["HARVEST_GATEWAY_POLICY"] == f"{mount['mountPath']}/{key}"


def test_secret_holds_every_key_the_deployment_reads() -> None:
    secret = manifests()["Secret"]
    for name, source in env_of(container()).items():
        if isinstance(source, dict) and "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"], name
            assert ref["key"] in secret["stringData"], name
    assert "HARVEST_GATEWAY_REDIS_URL" in secret["stringData"], "replicas must share Redis"


def test_service_hpa_and_pdb_select_the_deployment() -> None:
    docs = manifests()
    deploy = docs["Deployment"]
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    svc = docs["Service"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert port["targetPort"] == container()["ports"][0]["name"]
    pdb = docs["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    hpa = docs["HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deploy["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2 > pdb["spec"]["minAvailable"]
    assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
