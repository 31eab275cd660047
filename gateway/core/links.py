"""Rewrite Harvest's absolute URLs so clients that follow them stay on the gateway.

Only the strings that sit in ``links.*`` are replaced, and byte for byte in the original body:
the rest of the document is not re-serialised (re-encoding JSON changes sizes and ETags).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

# Where Harvest's own bodies point, whatever upstream URL the gateway was given: a mirror, a
# test double or a recording of the real service still writes these hosts into its links.
HARVEST_API = "https://api.harvestapp.com"
HARVEST_ID = "https://id.getharvest.com"

Move = tuple[str, str]  # (origin found in a URL, what replaces it)


def public_moves(api: str, id_: str, public: str) -> tuple[Move, ...]:
    """How upstream URLs map onto the gateway: API origins to ``public``, Harvest ID's to
    ``public/id`` (where the gateway serves it). The configured upstreams come first."""
    id_public = public + "/id"
    return ((api, public), (id_, id_public), (HARVEST_API, public), (HARVEST_ID, id_public))


def upstream_moves(api: str, id_: str, public: str) -> tuple[Move, ...]:
    """``public_moves`` undone, for what a recording stores: ``public/id`` back to Harvest ID
    (tried first, as it also starts with ``public``), the rest of ``public`` to the API."""
    return ((public + "/id", id_), (public, api))


def move_url(url: str, moves: Sequence[Move]) -> str:
    """``url`` under the first move whose origin it starts with; otherwise unchanged."""
    for old, new in moves:
        moved = rewrite_url(url, old, new)
        if moved != url:
            return moved
    return url


def rewrite_url(url: str, upstream: str, public: str) -> str:
    """``https://api.harvestapp.com/v2/x`` → ``{public}/v2/x``; other URLs are left alone."""
    if url == upstream or url.startswith(upstream + "/") or url.startswith(upstream + "?"):
        return public + url[len(upstream) :]
    return url


def rewrite_links(body: bytes, moves: Sequence[Move]) -> bytes:
    """Rewrite the absolute URLs found in a JSON body's top-level ``links`` object.

    Replacements are confined to the bytes of that object: a record elsewhere in the body that
    quotes the same URL (a note pasting a link) is left as Harvest sent it.
    """
    if b'"links"' not in body:
        return body
    try:
        text = body.decode("utf-8")
        found = _links_span(text)
    except (ValueError, UnicodeDecodeError):
        return body
    if found is None:
        return body
    links, start, end = found
    if not isinstance(links, dict):
        return body
    span = text[start:end]
    for value in links.values():
        if not isinstance(value, str):
            continue
        new = move_url(value, moves)
        if new != value:
            for old_enc, new_enc in _encodings(value, new):
                span = span.replace(old_enc, new_enc)
    if span == text[start:end]:
        return body
    # UTF-8 round-trips exactly, so every byte outside the span is the upstream's own.
    return (text[:start] + span + text[end:]).encode("utf-8")


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    return match.end() if match else i


def _links_span(text: str) -> tuple[Any, int, int] | None:
    """(value, start, end) of the top-level ``links`` member of a JSON object, if any.

    Walks the object's members with the stdlib decoder (the last duplicate wins, as in
    ``json.loads``); raises ``ValueError`` on malformed JSON.
    """
    i = _skip(text, 0)
    if text[i : i + 1] != "{":
        return None
    i = _skip(text, i + 1)
    found: tuple[Any, int, int] | None = None
    while text[i : i + 1] == '"':
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text[i : i + 1] != ":":
            raise ValueError("expected ':'")
        i = _skip(text, i + 1)
        value, end = _DECODER.raw_decode(text, i)
        if key == "links":
            found = (value, i, end)
        i = _skip(text, end)
        if text[i : i + 1] != ",":
            break
        i = _skip(text, i + 1)
    return found


def _encodings(old: str, new: str) -> list[tuple[str, str]]:
    """The ways a JSON encoder may have written the URL: plain, and with escaped slashes."""
    plain = (json.dumps(old), json.dumps(new))
    escaped = (plain[0].replace("/", "\\/"), plain[1].replace("/", "\\/"))
    return [plain, escaped]
