"""vcrpy 9.4 and the gateway read each other's cassettes.

Gateway-written cassettes are loaded by vcrpy and replayed in-process (record_mode "none", the
simulator stopped) through requests, httpx and aiohttp; cassettes vcrpy records replay through
the gateway.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import httpx
import requests
import vcr
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from gateway.settings import Mode
from gateway.simulator import ACCOUNT_ID_1, ADMIN_TOKEN_1, headers_for
from tests.integration.test_record_replay import UA, origin, settings_for, start_sim

H1 = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1, UA)
GETS = [
    "/v2/users/me",
    "/v2/company",
    "/v2/clients?per_page=2&page=1",
    "/v2/time_entries?per_page=3&page=2",
    "/v2/projects/999999999",  # a 404 body
]


async def record_through_gateway(start_gateway, tmp_path) -> tuple[str, dict[str, bytes]]:
    """Record GETs through a gateway; return the sim origin and what the sim said directly."""
    server, _ = await start_sim()
    upstream = origin(server)
    base, _ = await start_gateway(settings_for(Mode.RECORD, upstream, tmp_path))
    direct: dict[str, bytes] = {}
    async with aiohttp.ClientSession(headers=H1) as http:
        for path in GETS:
            async with http.get(base + path) as r:
                assert r.headers["X-Gateway-Record"] == "recorded"
            async with http.get(upstream + path) as r:
                direct[path] = await r.read()
    await server.close()
    return upstream, direct


def _replay_sync(cassette: str, upstream: str, client: str) -> dict[str, tuple[int, bytes]]:
    out = {}
    with vcr.use_cassette(cassette, record_mode="none"):
        if client == "requests":
            for path in GETS:
                r = requests.get(upstream + path, headers=H1, timeout=5)
                out[path] = (r.status_code, r.content)
        else:
            with httpx.Client() as http:
                for path in GETS:
                    hr = http.get(upstream + path, headers=H1)
                    out[path] = (hr.status_code, hr.content)
    return out


async def _replay_aiohttp(cassette: str, upstream: str) -> dict[str, tuple[int, bytes]]:
    out = {}
    with vcr.use_cassette(cassette, record_mode="none"):
        async with aiohttp.ClientSession(headers=H1) as http:
            for path in GETS:
                async with http.get(upstream + path) as r:
                    out[path] = (r.status, await r.read())
    return out


async def test_vcrpy_loads_and_replays_gateway_cassettes(start_gateway, tmp_path):
    upstream, direct = await record_through_gateway(start_gateway, tmp_path)
    cassette = str(tmp_path / "session.yaml")
    requests_, responses = FilesystemPersister.load_cassette(cassette, yamlserializer)
    assert len(requests_) == len(GETS)
    assert all(r["status"]["message"] is not None for r in responses)
    for client in ("requests", "httpx"):
        got = await asyncio.to_thread(_replay_sync, cassette, upstream, client)
        assert {p: b for p, (_, b) in got.items()} == direct, client
        assert got["/v2/projects/999999999"][0] == 404
    got = await _replay_aiohttp(cassette, upstream)
    assert {p: b for p, (_, b) in got.items()} == direct
    assert all(s == 200 for p, (s, _) in got.items() if "999" not in p)


def _vcrpy_record(cassette: str, upstream: str, client: str) -> dict[str, bytes]:
    out = {}
    # as apps should record: the token stays out of the file (the session's secret scan checks)
    with vcr.use_cassette(cassette, record_mode="once", filter_headers=["authorization"]):
        for path in GETS[:3]:
            if client == "requests":
                out[path] = requests.get(upstream + path, headers=H1, timeout=5).content
            else:
                out[path] = httpx.get(
                    upstream + path, headers={**H1, "Accept-Encoding": "gzip"}
                ).content
    return out


async def test_cassettes_recorded_by_vcrpy_replay_through_the_gateway(start_gateway, tmp_path):
    server, sim = await start_sim()
    upstream = origin(server)
    recorded = {}
    for client in ("requests", "httpx"):
        cassette = str(tmp_path / f"vcr-{client}.yaml")
        recorded[client] = await asyncio.to_thread(_vcrpy_record, cassette, upstream, client)
    assert len(sim.log) == 6
    await server.close()
    base, _ = await start_gateway(settings_for(Mode.REPLAY, upstream, tmp_path))
    async with aiohttp.ClientSession(headers=H1) as http:
        for client, bodies in recorded.items():
            for path, body in bodies.items():
                headers = {"X-Gateway-Cassette": f"vcr-{client}"}
                async with http.get(base + path, headers=headers) as r:
                    assert r.status == 200, (client, path, await r.text())
                    assert r.headers["X-Gateway-Replay"] == "hit"
                    assert "Content-Encoding" not in r.headers
                    got = await r.read()
                # Same document (links now point at the gateway instead of the simulator).
                assert json.loads(got.replace(b"http://gateway.test", upstream.encode())) == (
                    json.loads(body)
                )
