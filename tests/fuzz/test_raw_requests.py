"""Hypothesis writes raw request lines and headers to the gateway's socket.

Whatever the bytes, the gateway answers with a status (never a dropped connection without one,
never a 5xx of its own) in JSON when it answers itself, and nothing reaches the canary.
"""

from __future__ import annotations

import json
import socket

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1
from tests.fuzz.live import LiveStack
from tests.rawhttp import parse_response

PIECES = st.sampled_from([
    "/", "v2", "api", "id", "users", "me", "time_entries", "1", ".", "..", "%2e", "%2f", "%5c",
    "%00", "%252e", "//", "@", "127.0.0.1:CANARY", "http://127.0.0.1:CANARY", "?", "#", "&", "=",
    "%", "%c0%ae", ";", "~", "%20", "+", "é", "\\",
    # the gateway's own endpoints
    "_gateway", "cache", "cassettes", "rewind", "quota", "healthz", "readyz", "metrics",
])  # fmt: skip
TARGETS = st.lists(PIECES, min_size=1, max_size=10).map("".join)
VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from(["\t", "é", "\x7f"]),
    max_size=30,
)
HEADERS = st.dictionaries(
    st.sampled_from(["Host", "Authorization", "Harvest-Account-Id", "User-Agent", "Connection",
                     "X-Forwarded-Host", "Content-Type", "X-Gateway-Key", "Cache-Control",
                     "X-Request-Id", "X-Gateway-Cassette", "If-None-Match", "Pragma"]),
    VALUE, max_size=5,
)  # fmt: skip


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(method=st.sampled_from(["GET", "POST", "HEAD", "DELETE", "PATCH"]), target=TARGETS,
       headers=HEADERS)  # fmt: skip
@example(method="GET", target="/v2/users/me", headers={})
@example(method="GET", target="http://127.0.0.1:CANARY/v2/users/me", headers={})
@example(method="POST", target="/_gateway/cassettes/rewind", headers={"Authorization": "Bearer é"})
def test_raw_requests_get_an_answer_and_never_leave(live: LiveStack, method, target, headers):
    target = target.replace("CANARY", str(live.canary.port))
    base = {
        "Host": "gw",
        "Authorization": f"Bearer {ADMIN_TOKEN_1}",
        "Harvest-Account-Id": ACCOUNT_ID_1,
        "User-Agent": "RawFuzz (qa@example.com)",
    }
    merged = {**base, **headers, "Connection": "close"}
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in merged.items())
    before = len(live.sim.log)
    raw = exchange(live.port, head.encode("utf-8") + b"\r\n")
    assert raw, "the connection was dropped without an answer"
    resp = parse_response(raw)
    assert resp.status < 500 or resp.status in (502, 503, 504), (target, resp.status)
    upstream = live.sim.log[before:]
    if resp.status >= 400 and not (upstream and upstream[-1].status == resp.status):
        assert resp.headers.get("content-type", "").startswith("application/json"), (target, raw)
        if method != "HEAD":
            assert json.loads(resp.body)["error"]
    for entry in upstream:
        assert entry.path == "/v2" or entry.path.startswith(("/v2/", "/api/v2/")), entry.path
    assert live.canary.seen == []
