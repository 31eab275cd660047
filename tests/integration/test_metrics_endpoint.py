"""/metrics of a running gateway: the full metric set, bounded labels, an app-owned registry."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__
from gateway.settings import Settings
from gateway.web import keys
from tests.conftest import GatewayFactory

# The metric set the operator's README documents (issue 6): family names as parsed.
METRIC_SET = {
    "harvestgw_requests": "counter",
    "harvestgw_request_duration_seconds": "histogram",
    "harvestgw_upstream_duration_seconds": "histogram",
    "harvestgw_quota_wait_seconds": "histogram",
    "harvestgw_upstream_responses": "counter",
    "harvestgw_upstream_errors": "counter",
    "harvestgw_upstream_429": "counter",
    "harvestgw_rejections": "counter",
    "harvestgw_quota_reservations": "counter",
    "harvestgw_quota_utilisation_ratio": "gauge",
    "harvestgw_queue_depth": "gauge",
    "harvestgw_blocked_accounts": "gauge",
    "harvestgw_cache_requests": "counter",
    "harvestgw_cache_entries": "gauge",
    "harvestgw_cache_bytes": "gauge",
    "harvestgw_cassette_interactions": "counter",
    "harvestgw_redis_up": "gauge",
    "harvestgw_degraded": "gauge",
    "harvestgw_in_flight_requests": "gauge",
    "harvestgw_build_info": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
    "process_open_fds": "gauge",
}
HEADERS = {"Authorization": "Bearer t", "Harvest-Account-Id": "1", "User-Agent": "t (a@b.c)"}


async def scrape(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def test_the_metric_set_is_exposed_with_bounded_labels(start_gateway: GatewayFactory) -> None:
    # Nothing listens upstream: every forwarded request is a 502, which is all this needs.
    url, _ = await start_gateway(Settings(upstream="http://127.0.0.1:9"))
    raw_paths = ["/v2/users/123456", "/api/v2/time_entries/98765.json", "/v2/zz_unknown/4444"]
    async with aiohttp.ClientSession() as session:
        for path in raw_paths:
            async with session.get(url + path, headers=HEADERS) as resp:
                assert resp.status == 502
        text = await scrape(session, url)

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, kind in METRIC_SET.items():
        assert name in families, name
        assert families[name].type == kind, name
    routes = {
        s.labels["route"] for s in families["harvestgw_requests"].samples if "route" in s.labels
    }
    assert routes == {"/v2/users/{id}", "/v2/time_entries/{id}", "/v2/{unknown}"}
    for number in ("123456", "98765", "4444"):
        assert number not in text, "a raw path or id became a label value"
    (info,) = families["harvestgw_build_info"].samples
    assert info.labels == {"version": __version__, "mode": "proxy"}


async def test_latency_buckets_reach_a_minute(start_gateway: GatewayFactory) -> None:
    _, app = await start_gateway(Settings())
    metrics = app[keys.METRICS]
    metrics.request_duration.observe(45.0, "GET")
    metrics.upstream_duration.observe(45.0, "api")
    metrics.quota_wait.labels("general").observe(45.0)
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.type != "histogram":
            continue
        buckets = {
            float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")
        }
        assert buckets[30.0] == 0, family.name
        assert buckets[60.0] == 1, family.name  # a 45 s wait lands in a bucket of its own


async def test_each_app_owns_its_registry(start_gateway: GatewayFactory) -> None:
    url_a, app_a = await start_gateway(Settings(upstream="http://127.0.0.1:9"))
    _, app_b = await start_gateway(Settings(upstream="http://127.0.0.1:9"))
    assert app_a[keys.METRICS].registry is not app_b[keys.METRICS].registry
    async with (
        aiohttp.ClientSession() as session,
        session.get(url_a + "/v2/users/me", headers=HEADERS) as resp,
    ):
        assert resp.status == 502
    a = app_a[keys.METRICS].requests.value("/v2/users/me", "GET", "5xx", "none")
    b = app_b[keys.METRICS].requests.value("/v2/users/me", "GET", "5xx", "none")
    assert (a, b) == (1.0, 0.0)
