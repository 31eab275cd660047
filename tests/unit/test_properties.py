"""Hypothesis properties over the request-path decisions: routing, header rules, link rewriting."""

from __future__ import annotations

import json
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway.core.credentials import presented_key
from gateway.core.headers import (
    HOP_BY_HOP,
    Caller,
    Reject,
    bearer_token,
    check_api_request,
    hop_by_hop,
    principal_of,
)
from gateway.core.links import rewrite_links
from gateway.core.routes import RouteError, Upstream, resolve
from gateway.model import Exchange
from gateway.policy.schema import HeaderRules
from gateway.transports.upstream import UpstreamConfig, UpstreamTransport
from gateway.web.server import error_body

UPSTREAM, ID_UPSTREAM, PUBLIC = "https://api.example", "https://id.example", "http://gw.internal"
_SAFE = re.compile(r"^[A-Za-z0-9_\-.~]+$")

# Pieces that matter to path handling, mixed with arbitrary text.
PIECES = st.sampled_from([
    "v2", "api", "id", "users", "me", "time_entries", "123", ".", "..", "%2e", "%2E%2e", "%2f",
    "%2F", "%5c", "\\", "%00", "%252e", "//", "/", "@", "evil.example:80", "http:", "?", "#",
    ";", "%", "%c0%ae", ".json", "~", " ", "\t", "é", "%e2%80%ae",
])  # fmt: skip
PATHS = st.one_of(
    st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=8).map(lambda p: "/" + "/".join(p)),
    st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=10).map("".join),
    st.text(max_size=40),
)


def _exchange(path: str, query: str, upstream: Upstream) -> Exchange:
    route = resolve(path)
    return Exchange(
        method="GET", route=route, raw_query=query, upstream_headers=CIMultiDict(), body=b"",
        account_id=None, principal=None, request_id="r", received=0.0, caller_headers=CIMultiDict(),
    )  # fmt: skip


@settings(max_examples=600)
@given(raw=PATHS)
@example(raw="/v2/%2e%2e/x")
@example(raw="/id/__sim__/log")
@example(raw="http://evil.example/v2/users")
def test_resolve_never_leaves_v2_or_id_api(raw):
    try:
        route = resolve(raw)
    except RouteError:
        return
    path = route.path
    assert "//" not in path
    assert "\\" not in path
    segments = path.split("/")[1:]
    assert ".." not in segments
    assert "." not in segments
    assert all(_SAFE.match(s) for s in segments if s)
    if route.upstream is Upstream.API:
        assert path.startswith("/v2/") or path == "/v2"
        assert resolve(path) == route  # normalisation is idempotent
    else:
        assert path.startswith("/api/v2/")
        assert raw.startswith("/id/")


@settings(max_examples=300)
@given(raw=PATHS, query=st.text(max_size=30))
def test_the_upstream_url_always_names_the_configured_host(raw, query):
    try:
        route = resolve(raw)
    except RouteError:
        return
    transport = UpstreamTransport(UpstreamConfig(api=UPSTREAM, id=ID_UPSTREAM, public=PUBLIC))
    url = transport.url_for(_exchange(raw, query, route.upstream))
    origin = UPSTREAM if route.upstream is Upstream.API else ID_UPSTREAM
    assert f"{url.scheme}://{url.host}" == origin
    assert url.port == 443
    assert url.raw_path.startswith("/v2" if route.upstream is Upstream.API else "/api/v2/")


HEADER_NAMES = st.sampled_from([
    "Authorization", "authorization", "Harvest-Account-Id", "User-Agent", "Connection",
    "Content-Type", "X-Gateway-Key", "TE", "Keep-Alive", "X-Other",
])  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["Bearer tok", "bearer  tok ", "Bearer", "Basic x", "111111", "a/b", "",
                     "keep-alive, X-Other", "application/json", "close,,TE, "]),
)  # fmt: skip
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8).map(CIMultiDict)


@settings(max_examples=400)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"]),
    headers=HEADERS,
    query=st.dictionaries(st.sampled_from(["access_token", "account_id", "page"]), st.text()),
    body=st.one_of(st.binary(max_size=20), st.just(b'{"a": 1}'), st.just(b"")),
    needs_account=st.booleans(),
)
def test_check_api_request_is_total_and_never_leaks_the_token(
    method, headers, query, body, needs_account
):
    verdict = check_api_request(
        method=method, headers=headers, query=query, body=body, rules=HeaderRules(),
        needs_account=needs_account,
    )  # fmt: skip
    assert isinstance(verdict, Reject | Caller)
    if isinstance(verdict, Reject):
        assert 400 <= verdict.status < 500
        assert verdict.error
        assert verdict.description
        return
    token = bearer_token(headers.get("Authorization")) or query.get("access_token")
    if needs_account:
        assert token
        assert re.match(r"^[A-Za-z0-9_-]{1,64}$", verdict.account_id or "")
        assert verdict.principal == principal_of(token, verdict.account_id)
    if verdict.principal and token and len(token) > 3:
        assert token not in verdict.principal


@given(headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8))
def test_hop_by_hop_names_are_lowercase_tokens_and_include_the_fixed_set(headers):
    names = hop_by_hop(headers)
    assert names >= HOP_BY_HOP
    assert all(n == n.strip().lower() and n and "," not in n for n in names)


@given(value=st.one_of(st.none(), st.text(max_size=30)))
def test_bearer_token_and_gateway_key_extraction(value):
    token = bearer_token(value)
    if token is not None:
        assert token == token.strip()
        assert token
        assert value is not None
        assert token in value
    key = presented_key({"Authorization": value} if value is not None else {})
    assert key == token


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
LINK = st.one_of(
    st.none(),
    st.builds(lambda p, q: f"{UPSTREAM}/v2/{p}?page={q}", st.sampled_from(["users", "x"]),
              st.integers(0, 9)),
    st.text(max_size=15),
)  # fmt: skip


@st.composite
def documents(draw):
    links = draw(st.dictionaries(st.sampled_from(["first", "next", "previous", "last"]), LINK))
    link_values = [v for v in links.values() if isinstance(v, str)]
    # Data may quote a link's URL verbatim (a note pasting it): only ``links`` may change.
    data_strings = st.one_of(JSON_SCALARS, st.sampled_from(link_values or ["x"]))
    data = draw(st.lists(st.dictionaries(st.text(max_size=5), data_strings, max_size=3),
                         max_size=3))  # fmt: skip
    before = draw(st.booleans())
    doc = {"links": links, "items": data} if before else {"items": data, "links": links}
    escape = draw(st.booleans())
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if escape:
        text = text.replace("/", "\\/")
    return text.encode(), doc


@settings(max_examples=400)
@given(doc=documents())
@example(doc=(b'{"items": [{"n": "https://api.example/v2/users?page=2"}], '
              b'"links": {"next": "https://api.example/v2/users?page=2"}}',
              {"items": [{"n": "https://api.example/v2/users?page=2"}],
               "links": {"next": "https://api.example/v2/users?page=2"}}))  # fmt: skip
def test_rewrite_links_changes_nothing_outside_links(doc):
    body, original = doc
    out = rewrite_links(body, ((UPSTREAM, PUBLIC), (ID_UPSTREAM, PUBLIC + "/id")))
    rewritten = json.loads(out)
    assert rewritten["items"] == original["items"]
    for name, value in original["links"].items():
        expected = value
        if isinstance(value, str) and value.startswith(UPSTREAM + "/"):
            expected = PUBLIC + value[len(UPSTREAM) :]
        assert rewritten["links"][name] == expected
    if out != body:
        # What changed sits inside the links object: the bytes before and after it are intact.
        start = body.index(b'"links"')
        prefix = body[:start]
        assert out.startswith(prefix)


@given(status=st.sampled_from([400, 500, 504]), message=st.text(max_size=200))
def test_parser_error_descriptions_are_printable_and_short(status, message):
    from aiohttp.http_exceptions import BadHttpMessage

    code, error, description = error_body(status, BadHttpMessage(message), 8190)
    assert code in (400, 431)
    assert error in ("bad_request", "too_many_headers")
    assert len(description) < 160
    assert all(0x20 <= ord(c) < 0x7F for c in description)
