"""Only the configured upstreams, ever: raw-socket attacks on the request target and Host.

A canary listens on another loopback port. Every attack names it (in an absolute-form target,
in Host, in X-Forwarded-Host, in the path or the query); it must never see a connection, and
the simulator must see nothing but legitimate API paths.
"""

from __future__ import annotations

import pytest

from gateway.settings import Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1
from tests.rawhttp import Canary, request_bytes, send_raw

AUTH = {
    "Host": "gateway.internal",
    "Authorization": f"Bearer {ADMIN_TOKEN_1}",
    "Harvest-Account-Id": ACCOUNT_ID_1,
    "User-Agent": "Confinement (qa@example.com)",
    "Connection": "close",
}


@pytest.fixture
async def setup(start_simulator, start_gateway):
    canary = await Canary().start()
    origin, sim = await start_simulator(SimConfig())
    url, _ = await start_gateway(Settings(upstream=origin, id_upstream=origin))
    port = int(url.rsplit(":", 1)[1])
    yield port, canary, sim
    await canary.close()


def canary_targets(c: int) -> list[str]:
    """Request targets that try to reach 127.0.0.1:{c} or leave /v2 and /id."""
    return [
        # Regression (raw-request fuzzer): no path at all fell through the router to
        # aiohttp's plain-text 404.
        f"http://127.0.0.1:{c}",
        f"http://127.0.0.1:{c}/v2/users/me",
        f"http://127.0.0.1:{c}/api/v2/users/me?x=1",
        f"https://127.0.0.1:{c}/v2/users/me",
        f"//127.0.0.1:{c}/v2/users/me",
        f"///127.0.0.1:{c}/v2/users/me",
        f"/v2/..//127.0.0.1:{c}/",
        f"/v2/%2f%2f127.0.0.1:{c}/users/me",
        f"/v2/%2F%2F127.0.0.1:{c}%2Fusers",
        f"/v2/users/me/../../..//127.0.0.1:{c}",
        f"/v2/@127.0.0.1:{c}/users/me",
        f"/id/@127.0.0.1:{c}/api/v2/accounts",
        f"/v2/users/me\\..\\..\\127.0.0.1:{c}",
        "/v2/../healthz",
        "/v2/%2e%2e/%2e%2e/etc/passwd",
        "/v2/%2E%2E/users/me",
        "/v2/.%2e/users/me",
        "/v2/%252e%252e/users/me",
        "/v2/%c0%ae%c0%ae/users/me",
        "/v2/users/me%2f..%2f..%2f..%2fetc",
        "/v2/users/me%5c..%5c..",
        "/v2/users/me%00.json",
        "/v2/./users/me",
        "/api/v2/../../__sim__/log",
        "/api/v2/%2e%2e/%2e%2e/__sim__/reset",
        "/id/../__sim__/log",
        "/id/__sim__/log",
        "/id/api/__sim__/log",
        "/id/%2e%2e/__sim__/log",
        "/id/api/v2/../../../__sim__/log",
        "/id/api/v2/%2e%2e%2f%2e%2e%2f%2e%2e%2f__sim__/log",
        "/__sim__/log",
        "/_gateway/../v2/users/me",
        "*",
    ]


async def test_no_target_reaches_another_host_or_leaves_the_api(setup):
    port, canary, sim = setup
    statuses = {}
    for target in canary_targets(canary.port):
        resp = await send_raw(port, request_bytes(target, AUTH))
        statuses[target] = (resp.status, resp.json()["error"])
        assert 400 <= resp.status < 500, (target, resp.status, resp.body[:200])
    # The refusals are the gateway's own (a parser 400 would hide whether routing is safe).
    parser_refusals = {t for t, (_, error) in statuses.items() if error == "bad_request"}
    assert parser_refusals <= {"*", f"/v2/users/me\\..\\..\\127.0.0.1:{canary.port}"}, statuses
    assert canary.seen == [], statuses
    assert sim.log == [], [(e.method, e.path) for e in sim.log]


async def test_absolute_form_is_refused_with_json_even_for_the_real_upstream(setup):
    port, canary, sim = setup
    for host in (f"127.0.0.1:{canary.port}", "api.harvestapp.com"):
        resp = await send_raw(port, request_bytes(f"http://{host}/v2/users/me", AUTH))
        assert resp.status == 400
        assert resp.json()["error"] == "invalid_target"
    assert canary.seen == []
    assert sim.log == []


@pytest.mark.parametrize(
    "spoof",
    [
        {"Host": "CANARY"},
        {"X-Forwarded-Host": "CANARY"},
        {"Forwarded": "host=CANARY;proto=http"},
        {"X-Forwarded-For": "CANARY", "X-Forwarded-Proto": "https"},
        {"X-Original-URL": "http://CANARY/v2/users/me", "X-Rewrite-URL": "//CANARY/"},
    ],
)
async def test_host_and_forwarding_headers_do_not_pick_the_upstream(setup, spoof):
    port, canary, sim = setup
    where = f"127.0.0.1:{canary.port}"
    headers = {**AUTH, **{k: v.replace("CANARY", where) for k, v in spoof.items()}}
    resp = await send_raw(port, request_bytes("/v2/users/me", headers))
    assert resp.status == 200, resp.body[:200]
    assert canary.seen == []
    assert [e.path for e in sim.log] == ["/v2/users/me"]
    seen = {k.lower(): v for k, v in sim.log[0].headers.items()}
    assert seen["host"].endswith(f":{sim_port(sim, seen)}")
    assert where not in seen.get("host", "")
    assert "x-forwarded-host" not in seen
    assert "forwarded" not in seen


def sim_port(sim, seen: dict[str, str]) -> str:
    return seen["host"].rsplit(":", 1)[1]


async def test_query_and_fragment_tricks_stay_on_the_upstream(setup):
    port, canary, sim = setup
    c = canary.port
    for target in (
        f"/v2/users/me?next=http://127.0.0.1:{c}/",
        f"/v2/users/me?@127.0.0.1:{c}",
        f"/v2/users/me?x=%2F%2F127.0.0.1:{c}",
    ):
        resp = await send_raw(port, request_bytes(target, AUTH))
        assert resp.status == 200, (target, resp.body[:200])
    # A fragment never belongs in a request target: refused rather than guessed at.
    resp = await send_raw(port, request_bytes(f"/v2/users/me#@127.0.0.1:{c}", AUTH))
    assert resp.status == 404
    assert canary.seen == []
    assert {e.path for e in sim.log} == {"/v2/users/me"}


async def test_connect_method_opens_no_tunnel(setup):
    port, canary, sim = setup
    resp = await send_raw(port, request_bytes(f"127.0.0.1:{canary.port}", AUTH, method="CONNECT"))
    assert 400 <= resp.status < 500
    assert canary.seen == []
    assert sim.log == []
