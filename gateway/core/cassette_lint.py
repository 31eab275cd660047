"""What is wrong with a cassette document, as vcrpy and our own rules see it (pure).

Each rule comes from a verified failure (record-replay research §3.5): an extra request key is a
TypeError in every vcrpy stub; a scalar header value is silently corrupted by requests and httpx;
a missing ``status.message`` or ``body.string`` is a KeyError; a top-level ``metadata`` crashes
pytest-recording; non-ASCII text depends on the reader's locale; a ``Content-Encoding`` beside a
decoded body breaks httpx.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.core.redact import find_secrets, interaction_text

REQUEST_KEYS = frozenset({"body", "headers", "method", "uri"})


def lint_document(doc: Any, text: str, known_secrets: Iterable[str] = ()) -> list[str]:
    """Problems found in a parsed cassette ``doc`` (its YAML source is ``text``)."""
    problems: list[str] = []
    if not text.isascii():
        problems.append("the file is not ASCII (vcrpy reads it in the locale's encoding)")
    if not isinstance(doc, dict):
        return [*problems, "the top level is not a mapping with 'interactions' and 'version'"]
    extra = sorted(set(doc) - {"interactions", "version"})
    if "metadata" in extra:
        problems.append("top-level 'metadata' (pytest-recording 0.14 cannot load it)")
    elif extra:
        problems.append(f"unexpected top-level keys {extra} (vcrpy drops them on re-save)")
    if doc.get("version") != 1:
        problems.append(f"version is {doc.get('version')!r}, not 1")
    items = doc.get("interactions")
    if not isinstance(items, list):
        return [*problems, "no 'interactions' list"]
    for n, item in enumerate(items):
        problems += [f"interaction {n}: {p}" for p in _lint_interaction(item)]
        if isinstance(item, dict):
            for leak in find_secrets(interaction_text(item), known_secrets):
                problems.append(f"interaction {n}: holds {leak}")
    return problems


def _lint_interaction(item: Any) -> list[str]:
    if not isinstance(item, dict):
        return ["not a mapping"]
    req, resp = item.get("request"), item.get("response")
    out: list[str] = []
    if not isinstance(req, dict):
        return ["no 'request' mapping"]
    if set(req) != REQUEST_KEYS:
        out.append(f"request keys are {sorted(req)}, vcrpy needs exactly {sorted(REQUEST_KEYS)}")
    out += _header_problems(req.get("headers"), "request")
    if not isinstance(resp, dict):
        return [*out, "no 'response' mapping"]
    status = resp.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("code"), int):
        out.append("response.status.code is missing or not an integer")
    elif "message" not in status:
        out.append("response.status.message is missing (a KeyError in every vcrpy stub)")
    body = resp.get("body")
    if not isinstance(body, dict) or "string" not in body:
        out.append("response.body.string is missing (requests and httpx raise KeyError)")
    headers = resp.get("headers")
    out += _header_problems(headers, "response")
    if isinstance(headers, dict):
        names = {str(k).lower() for k in headers}
        if "content-encoding" in names and isinstance(body, dict):
            raw = body.get("string")
            if not (isinstance(raw, bytes) and raw[:2] == b"\x1f\x8b"):
                out.append("Content-Encoding beside a decoded body (httpx fails to decode it)")
    return out


def _header_problems(headers: Any, where: str) -> list[str]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        return [f"{where}.headers is not a mapping"]
    scalars = sorted(str(k) for k, v in headers.items() if not isinstance(v, list))
    if scalars:
        return [f"{where}.headers {scalars} are not lists (requests and httpx corrupt them)"]
    return []
