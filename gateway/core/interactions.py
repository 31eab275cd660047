"""Exchange + reply ⇄ a vcrpy-shaped interaction dict, as pure functions.

The recorded form is what every vcrpy client replays (record-replay research §3.4): the body as
the upstream meant it (decoded, links pointing at the upstream, not at the gateway), no
``Content-Encoding`` or ``Transfer-Encoding``, and a ``Content-Length`` that fits the body.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from multidict import CIMultiDict

from gateway.core.links import Move, move_url, rewrite_links

Interaction = dict[str, Any]

# Added by the gateway on the way upstream (they name the caller's address): not the request.
_NOT_RECORDED = frozenset({"x-forwarded-for", "x-forwarded-proto"})
# Framing that a replay recomputes; Content-Length is rewritten to fit the stored body.
_FRAMING = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive"}
)


def text_or_bytes(data: bytes) -> str | bytes:
    """UTF-8 text as ``str`` (a readable YAML string); anything else stays bytes (``!!binary``)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def as_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def header_lists(pairs: Iterable[tuple[str, str]], drop: frozenset[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # first spelling of a name wins; later values join its list
    for name, value in pairs:
        low = name.lower()
        if low in drop:
            continue
        # plain str: header names may be multidict's ``istr``, which a safe YAML dumper refuses
        out.setdefault(names.setdefault(low, str(name)), []).append(str(value))
    return out


def to_interaction(
    *,
    method: str,
    uri: str,
    request_headers: Iterable[tuple[str, str]],
    request_body: bytes,
    status: int,
    reason: str,
    response_headers: Iterable[tuple[str, str]],
    response_body: bytes,
    moves_back: Sequence[Move],
) -> Interaction:
    """A recorded interaction. The transport pointed links and ``Location`` at the gateway;
    ``moves_back`` (``links.upstream_moves``) points them at the upstreams again."""
    body = rewrite_links(response_body, moves_back)
    headers = header_lists(response_headers, _FRAMING)
    for name, values in headers.items():
        if name.lower() == "location":
            headers[name] = [move_url(v, moves_back) for v in values]
    return {
        "request": {
            "body": text_or_bytes(request_body) if request_body else None,
            "headers": header_lists(request_headers, _NOT_RECORDED),
            "method": method,
            "uri": uri,
        },
        "response": {
            "body": {"string": text_or_bytes(body)},
            "headers": headers,
            "status": {"code": status, "message": reason},
        },
    }


def with_length(interaction: Interaction) -> Interaction:
    """Set the response's ``Content-Length`` to its stored body (after any redaction)."""
    resp = interaction["response"]
    size = len(as_bytes(resp["body"]["string"]))
    headers = {k: v for k, v in resp["headers"].items() if k.lower() != "content-length"}
    headers["Content-Length"] = [str(size)]
    return {**interaction, "response": {**resp, "headers": headers}}


def reply_parts(
    interaction: Interaction, moves: Sequence[Move]
) -> tuple[int, str, CIMultiDict[str], bytes]:
    """(status, reason, headers, body) to answer a caller with a recorded response.

    Cassettes written by vcrpy's httpx stub keep a gzip body with ``Content-Encoding``; those of
    its aiohttp and requests stubs keep a decoded body with the header. Both are served decoded.
    """
    resp = interaction["response"]
    body = as_bytes(resp["body"].get("string"))
    encoding = ""
    headers: CIMultiDict[str] = CIMultiDict()
    for name, values in resp["headers"].items():
        low = name.lower()
        if low == "content-encoding":
            encoding = (values[0] if values else "").strip().lower()
            continue
        if low in _FRAMING:
            continue
        for value in values:
            headers.add(name, move_url(value, moves) if low == "location" else value)
    body = rewrite_links(_decoded(body, encoding), moves)
    return int(resp["status"]["code"]), str(resp["status"].get("message") or ""), headers, body


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding in ("gzip", "x-gzip") and body[:2] == b"\x1f\x8b":
        return zlib.decompress(body, wbits=31)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return body
    return body
