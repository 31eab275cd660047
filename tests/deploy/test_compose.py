"""docker-compose.yml, parsed: two gateway replicas on one Redis, Prometheus, Grafana.

No Docker engine runs these tests (see README: what is and is not checked here).
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.deploy.support import COMPOSE, DEPLOY, load_dashboard


def services() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))
    found: dict[str, Any] = doc["services"]
    return found


def gateways() -> dict[str, Any]:
    return {k: v for k, v in services().items() if k.startswith("gateway")}


def test_compose_runs_two_gateway_replicas_sharing_one_redis() -> None:
    gws = gateways()
    assert len(gws) == 2
    host_ports = set()
    for name, svc in gws.items():
        env = svc["environment"]
        assert env["HARVEST_GATEWAY_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["HARVEST_GATEWAY_HOST"] == "0.0.0.0", name
        assert svc["depends_on"]["redis"]["condition"] == "service_healthy", name
        (port,) = svc["ports"]
        published, container = port.rsplit(":", 1)[0], port.rsplit(":", 1)[1]
        assert container == "8080", name
        assert published.startswith("127.0.0.1:"), name
        host_ports.add(published)
        assert env["HARVEST_GATEWAY_PUBLIC_URL"].endswith(published.split(":")[-1]), name
    assert len(host_ports) == 2


def test_every_service_has_an_image_a_healthcheck_and_resource_limits() -> None:
    svcs = services()
    assert {"redis", "prometheus", "grafana"} <= set(svcs)
    for name, svc in svcs.items():
        assert svc.get("image"), name
        assert svc["healthcheck"]["test"], name
        limits = svc["deploy"]["resources"]["limits"]
        assert limits["cpus"], name
        assert limits["memory"], name
    for name, svc in gateways().items():
        build = svc["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file(), name
        probe = " ".join(svc["healthcheck"]["test"])
        assert "/healthz" in probe, name


def test_mounted_config_exists_and_grafana_is_provisioned() -> None:
    svcs = services()
    for name in ("prometheus", "grafana"):
        for volume in svcs[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    prov = DEPLOY / "grafana" / "provisioning"
    (ds,) = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((prov / "dashboards" / "harvest-gateway.yml").read_text())[
        "providers"
    ]
    mounts = dict(v.split(":")[:2] for v in svcs["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert load_dashboard()["uid"]


def test_gateways_get_time_to_drain_their_queue() -> None:
    for name, svc in gateways().items():
        grace = svc["stop_grace_period"]
        assert grace.endswith("s"), name
        assert int(grace[:-1]) > 60 + 30, name
