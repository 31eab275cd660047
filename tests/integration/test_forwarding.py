"""The gateway as a faithful reverse proxy, through real sockets to a real aiohttp upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from io import StringIO

import aiohttp
import pytest
from yarl import URL

from gateway.settings import Settings
from gateway.web import keys
from tests.support import free_port

H = {
    "Authorization": "Bearer secret-token-123",
    "Harvest-Account-Id": "4242",
    "User-Agent": "ForwardTest (qa@example.com)",
}


@pytest.fixture
async def gw(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin, id_upstream=echo.origin + "/idp"))
    async with aiohttp.ClientSession(
        base_url=url, auto_decompress=False, skip_auto_headers=("User-Agent",)
    ) as session:
        yield session


def seen_headers(entry) -> dict[str, str]:
    return {k.lower(): v for k, v in entry["headers"]}


async def test_query_string_is_forwarded_byte_exact(gw, echo):
    target = "/v2/time_entries?b=2&a=1&x=%2F%20+y&empty=&flag&z=%E2%9C%93"
    async with gw.get(URL(target, encoded=True), headers=H) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["raw_path"] == target


async def test_api_alias_reaches_v2(gw, echo):
    async with gw.get("/api/v2/users/me", headers=H) as resp:
        assert resp.status == 200
    assert echo.seen[-1]["raw_path"] == "/v2/users/me"


@pytest.mark.parametrize(
    ("content_type", "payload"),
    [
        ("application/json", b'{"project_id": 1, "hours": 1.5, "notes": "\\u00e9t\\u00e9"}'),
        ("application/x-www-form-urlencoded", b"project_id=1&hours=1.5&notes=%C3%A9t%C3%A9"),
    ],
)
async def test_bodies_arrive_byte_exact(gw, echo, content_type, payload):
    async with gw.post(
        "/v2/time_entries", data=payload, headers={**H, "Content-Type": content_type}
    ) as resp:
        assert resp.status == 200
    entry = echo.seen[-1]
    assert base64.b64decode(entry["body_b64"]) == payload
    assert seen_headers(entry)["content-type"] == content_type


async def test_multipart_receipt_upload_arrives_intact(gw, echo):
    form = aiohttp.FormData()
    form.add_field("project_id", "1")
    form.add_field("receipt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, filename="r.png")
    async with gw.post("/v2/expenses", data=form, headers=H) as resp:
        assert resp.status == 200
    entry = echo.seen[-1]
    raw = base64.b64decode(entry["body_b64"])
    assert seen_headers(entry)["content-type"].startswith("multipart/form-data; boundary=")
    assert bytes(range(256)) * 40 in raw
    assert b'filename="r.png"' in raw


async def test_patch_delete_head_options_pass_through(gw, echo):
    for method in ("PATCH", "DELETE", "OPTIONS"):
        async with gw.request(method, "/v2/time_entries/1", headers=H) as resp:
            assert resp.status == 200, method
            assert echo.seen[-1]["method"] == method
    async with gw.head("/v2/time_entries/1", headers=H) as resp:
        assert resp.status == 200
        assert resp.headers["X-Echo"] == "head"


async def test_hop_by_hop_headers_are_stripped_both_ways(gw, echo):
    headers = {**H, "Connection": "keep-alive, X-Private", "X-Private": "do-not-forward",
               "TE": "trailers", "Proxy-Authorization": "Basic x", "X-Keep": "yes"}  # fmt: skip
    async with gw.get("/v2/hop", headers=headers) as resp:
        assert resp.status == 200
        assert "X-Secret-Hop" not in resp.headers
        assert "Keep-Alive" not in resp.headers
    sent = seen_headers(echo.seen[-1])
    assert "x-private" not in sent
    assert "te" not in sent
    assert "proxy-authorization" not in sent
    assert sent["x-keep"] == "yes"
    assert sent["host"] == echo.origin.removeprefix("http://")
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-forwarded-proto"] == "http"
    assert sent["user-agent"] == H["User-Agent"]
    assert sent["authorization"] == H["Authorization"]


async def test_gzip_upstream_is_decoded_consistently(gw, echo):
    async with gw.get("/v2/gzip", headers={**H, "Accept-Encoding": "gzip"}) as resp:
        assert resp.status == 200
        assert "Content-Encoding" not in resp.headers
        raw = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(raw)
    assert len(json.loads(raw)["users"]) == 200


async def test_upstream_is_asked_only_for_encodings_the_gateway_decodes(gw, echo):
    # Node clients ask for br; Harvest's CDN would answer it, and aiohttp (without brotli)
    # could not decode it: a 502 for a request that works without the gateway.
    asked = {**H, "Accept-Encoding": "gzip, deflate, br, zstd"}
    async with gw.get("/v2/gzip", headers=asked) as resp:
        assert resp.status == 200
        assert "Content-Encoding" not in resp.headers
        assert len(json.loads(await resp.read())["users"]) == 200
    sent = seen_headers(echo.seen[-1])["accept-encoding"]
    assert {token.strip() for token in sent.split(",")} == {"gzip", "deflate"}


async def test_no_accept_encoding_compresses_the_hop_and_sends_identity(gw, echo):
    async with gw.get("/v2/gzip", headers=H, skip_auto_headers=("Accept-Encoding",)) as resp:
        assert resp.status == 200
        assert "Content-Encoding" not in resp.headers
        raw = await resp.read()
    assert "gzip" in seen_headers(echo.seen[-1])["accept-encoding"]
    assert len(json.loads(raw)["users"]) == 200


async def test_large_responses_are_streamed_not_buffered(gw, echo):
    async with gw.get("/v2/stream", headers=H) as resp:
        assert resp.status == 200
        # The upstream holds the rest back until we have the first chunk: a buffering proxy
        # would deadlock here.
        first = await resp.content.readexactly(len(b"first-chunk;"))
        assert first == b"first-chunk;"
        echo.release.set()
        rest = await resp.read()
    assert len(rest) == 64 * 65536


async def test_links_and_location_are_rewritten_to_the_public_url(echo, start_gateway):
    public = "https://gw.example.internal"
    url, _ = await start_gateway(Settings(upstream=echo.origin, public_url=public))
    async with aiohttp.ClientSession(base_url=url) as s:
        async with s.get("/v2/links", headers=H) as resp:
            links = (await resp.json())["links"]
        assert links["next"] == f"{public}/v2/links?page=2&per_page=2&ref=next"
        assert links["previous"] is None
        async with s.post("/v2/created", json={"a": 1}, headers=H) as resp:
            assert resp.status == 201
            assert resp.headers["Location"] == f"{public}/api/v2/created/7"


async def test_id_prefix_goes_to_the_id_upstream(gw, echo):
    async with gw.post(
        "/id/api/v2/oauth2/token", data={"grant_type": "refresh_token"}, headers={"User-Agent": "x"}
    ) as resp:
        assert resp.status == 200
    assert echo.seen[-1]["raw_path"] == "/idp/api/v2/oauth2/token"


async def test_request_id_is_kept_or_generated(gw, echo):
    async with gw.get("/v2/users/me", headers={**H, "X-Request-Id": "abc-123"}) as resp:
        assert resp.headers["X-Request-Id"] == "abc-123"
        assert resp.headers["X-Upstream-Request-Id"] == "upstream-id"
        assert float(resp.headers["X-Gateway-Queue-Wait"]) < 100  # milliseconds, no backlog
    async with gw.get("/v2/users/me", headers=H) as resp:
        assert len(resp.headers["X-Request-Id"]) == 32
    for given in ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", "a/b+c=="):
        async with gw.get("/v2/users/me", headers={**H, "X-Request-Id": given}) as resp:
            assert resp.headers["X-Request-Id"] == given
    async with gw.get("/v2/users/me", headers={**H, "X-Request-Id": "two words"}) as resp:
        assert resp.headers["X-Request-Id"] != "two words"  # not kept: a fresh id
        assert len(resp.headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    ("headers", "method", "body", "status", "error"),
    [
        ({"Harvest-Account-Id": "1", "User-Agent": "x"}, "GET", None, 401, "invalid_token"),
        ({"Authorization": "Bearer t", "User-Agent": "x"}, "GET", None, 401, "invalid_token"),
        ({"Authorization": "Bearer t", "Harvest-Account-Id": "1"}, "GET", None, 400,
         "missing_user_agent"),
        (H, "GET", b"null", 400, "get_with_body"),
        ({**H, "Content-Type": "application/json"}, "POST", b"{oops", 400, "invalid_json"),
    ],
)  # fmt: skip
async def test_local_rejections_never_reach_upstream(
    gw, echo, headers, method, body, status, error
):
    async with gw.request(method, "/v2/time_entries", headers=headers, data=body) as resp:
        assert resp.status == status
        payload = await resp.json()
        challenge = resp.headers.get("WWW-Authenticate", "")
    assert payload["error"] == error
    assert payload["error_description"]
    # Harvest's 401 carries its OAuth challenge; so does the gateway's own.
    assert challenge.startswith('Bearer realm="Rack::OAuth2') == (status == 401)
    assert (resp.headers["X-Cache"], resp.headers["X-Gateway-Queue-Wait"]) == ("BYPASS", "0")
    assert echo.seen == []


async def test_unknown_paths_get_a_json_404_and_reach_nothing(gw, echo):
    for path in ("/v1/users", "/v2/../etc/passwd", "/_gateway/nothing"):
        async with gw.get(URL(path, encoded=True), headers=H) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"] == "not_found"
    assert echo.seen == []


async def test_unreachable_upstream_is_a_json_502(start_gateway):
    url, _ = await start_gateway(Settings(upstream=f"http://127.0.0.1:{free_port()}"))
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/users/me", headers=H) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"] == "upstream_unavailable"


async def test_reset_is_a_json_502(gw, echo):
    async with gw.get("/v2/reset", headers=H) as resp:
        assert resp.status == 502
        assert (await resp.json())["error"] == "upstream_unavailable"


async def test_slow_upstream_is_a_json_504_within_the_timeout(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin, read_timeout=0.3))
    loop_time = __import__("time").monotonic
    started = loop_time()
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/slow", headers=H) as resp:
        assert resp.status == 504
        assert (await resp.json())["error"] == "upstream_timeout"
    assert loop_time() - started < 2.0


async def test_a_json_body_that_stalls_is_a_json_504_within_the_read_timeout(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin, read_timeout=0.3))
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/stall-json", headers=H) as resp:
        assert resp.status == 504
        assert (await resp.json())["error"] == "upstream_timeout"
        assert resp.headers["X-Cache"] == "BYPASS"  # its own answers say so too (echo: no rule)
    assert time.monotonic() - started < 2.0


async def test_a_stream_that_stalls_is_cut_within_the_read_timeout(echo, start_gateway):
    url, _ = await start_gateway(Settings(upstream=echo.origin, read_timeout=0.3))
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/stall-stream", headers=H) as resp:
        assert resp.status == 200  # the head went out before the stall
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert time.monotonic() - started < 2.0


async def test_a_stream_that_trickles_is_cut_at_the_total_timeout(echo, start_gateway):
    # Never silent for the read timeout, but longer than the total one.
    settings = Settings(upstream=echo.origin, read_timeout=0.5, total_timeout=1.0)
    url, _ = await start_gateway(settings)
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(url + "/v2/trickle", headers=H) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert 0.9 < time.monotonic() - started < 3.0


async def test_access_log_has_template_and_no_secret(echo, start_gateway):
    logs = StringIO()
    url, _ = await start_gateway(Settings(upstream=echo.origin), log_stream=logs)
    target = url + "/v2/time_entries/991?access_token=qs-secret-9"
    async with aiohttp.ClientSession() as s, s.get(target, headers=H):
        pass
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    access = [e for e in lines if e["event"] == "request"]
    assert access[-1]["route"] == "/v2/time_entries/{id}"
    assert access[-1]["status"] == 200
    assert access[-1]["account_id"] == "4242"
    text = logs.getvalue()
    assert "secret-token-123" not in text
    assert "qs-secret-9" not in text
    # The raw path's id is nowhere (timestamps are left out: their digits may hold any number).
    untimed = [{k: v for k, v in e.items() if k != "timestamp"} for e in lines]
    assert "991" not in json.dumps(untimed)


async def test_metrics_count_requests_by_template(gw, echo):
    async with gw.get("/v2/time_entries/5", headers=H):
        pass
    async with gw.get("/metrics") as resp:
        text = await resp.text()
    assert (
        'harvestgw_requests_total{cache="MISS",method="GET",route="/v2/time_entries/{id}",'
        'status_class="2xx"} 1.0' in text
    )
    assert "harvestgw_request_duration_seconds_bucket" in text


async def test_without_public_url_links_follow_the_callers_host(echo, start_gateway):
    """Behind 0.0.0.0 or a port mapping, links point where the caller reached the gateway."""
    url, _ = await start_gateway(Settings(upstream=echo.origin))
    async with aiohttp.ClientSession() as s:
        headers = {**H, "Host": "gw.internal:9000"}
        async with s.get(url + "/v2/links", headers=headers) as resp:
            links = (await resp.json())["links"]
        assert links["next"] == "http://gw.internal:9000/v2/links?page=2&per_page=2&ref=next"
        async with s.post(url + "/v2/created", json={"a": 1}, headers=headers) as resp:
            assert resp.headers["Location"] == "http://gw.internal:9000/api/v2/created/7"
        # A Host that is no host name falls back to the listen address.
        async with s.get(url + "/v2/links", headers={**H, "Host": "bad host/x"}) as resp:
            assert (await resp.json())["links"]["next"].startswith(url + "/v2/links?")
        # So does Harvest's own name: a client redirected below its URL (a transport swapping
        # the address) must not be handed links back to the real service.
        for host in ("api.harvestapp.com", "API.harvestapp.com:443"):
            async with s.get(url + "/v2/links", headers={**H, "Host": host}) as resp:
                assert (await resp.json())["links"]["next"].startswith(url + "/v2/links?"), host


async def test_every_proxied_answer_says_what_the_cache_did(gw, echo):
    async with gw.post("/v2/echo", json={"a": 1}, headers=H) as resp:
        assert resp.headers["X-Cache"] == "BYPASS"  # a write
    async with gw.get("/id/api/v2/accounts", headers=H) as resp:
        assert resp.headers["X-Cache"] == "BYPASS"  # Harvest ID is never cached


async def test_a_refused_request_is_logged_with_the_account_it_names(echo, start_gateway):
    logs = StringIO()
    url, _ = await start_gateway(Settings(upstream=echo.origin), log_stream=logs)
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/v2/time_entries", headers=H, data=b"null") as resp:
            assert resp.status == 400  # a GET with a body: refused before it is an Exchange
        bad = {**H, "Harvest-Account-Id": "not an id"}
        async with s.get(url + "/v2/time_entries", headers=bad) as resp:
            assert resp.status == 400
    access = [e for e in map(json.loads, logs.getvalue().splitlines()) if e["event"] == "request"]
    assert [(e["status"], e["account_id"]) for e in access] == [(400, "4242"), (400, None)]


async def test_a_caller_that_hangs_up_is_logged_as_499_not_a_5xx(echo, start_gateway):
    """A caller that gives up (its own timeout) is not the gateway failing: nginx's 499 in the
    access line and a 4xx in the metrics, so the 5xx alert does not fire on impatient clients."""
    logs = StringIO()
    url, app = await start_gateway(Settings(upstream=echo.origin), log_stream=logs)
    async with aiohttp.ClientSession() as s:
        with pytest.raises(TimeoutError):
            async with s.get(url + "/v2/slow", headers=H, timeout=aiohttp.ClientTimeout(0.3)):
                pass
    for _ in range(100):  # the gateway learns of the hang-up from its socket
        lines = [json.loads(line) for line in logs.getvalue().splitlines()]
        access = [e for e in lines if e.get("event") == "request"]
        if access:
            break
        await asyncio.sleep(0.02)
    assert [(e["route"], e["status"]) for e in access] == [("/v2/{unknown}", 499)]
    metrics = app[keys.METRICS].render().decode()
    counted = 'harvestgw_requests_total{cache="none",method="GET",route="/v2/{unknown}",'
    assert counted + 'status_class="4xx"} 1.0' in metrics
    assert 'status_class="5xx"' not in metrics
