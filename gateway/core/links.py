"""Rewrite Harvest's absolute URLs so clients that follow them stay on the gateway.

Only the strings that sit in ``links.*`` are replaced, and byte for byte in the original body:
the rest of the document is not re-serialised (re-encoding JSON changes sizes and ETags).
"""

from __future__ import annotations

import json
from typing import Any


def rewrite_url(url: str, upstream: str, public: str) -> str:
    """``https://api.harvestapp.com/v2/x`` → ``{public}/v2/x``; other URLs are left alone."""
    if url == upstream or url.startswith(upstream + "/") or url.startswith(upstream + "?"):
        return public + url[len(upstream) :]
    return url


def rewrite_links(body: bytes, upstreams: tuple[str, ...], public: str) -> bytes:
    """Rewrite the absolute URLs found in a JSON body's top-level ``links`` object."""
    if b'"links"' not in body:
        return body
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    links = doc.get("links") if isinstance(doc, dict) else None
    if not isinstance(links, dict):
        return body
    for value in links.values():
        if not isinstance(value, str):
            continue
        for upstream in upstreams:
            new = rewrite_url(value, upstream, public)
            if new != value:
                for old_enc, new_enc in _encodings(value, new):
                    body = body.replace(old_enc, new_enc)
                break
    return body


def _encodings(old: str, new: str) -> list[tuple[bytes, bytes]]:
    """The ways a JSON encoder may have written the URL: plain, and with escaped slashes."""
    plain = (json.dumps(old).encode(), json.dumps(new).encode())
    escaped = (plain[0].replace(b"/", b"\\/"), plain[1].replace(b"/", b"\\/"))
    return [plain, escaped]
