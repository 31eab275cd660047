"""Redaction of a recorded interaction before it touches disk, and the last-line secret scan.

Interactions are vcrpy-shaped dicts (see ``gateway.stores.cassettes``). Redaction keeps a cassette
matchable: a redacted header keeps its name, a redacted query parameter is removed (as vcrpy's
``filter_query_parameters`` does, and matching ignores those names on both sides), and the account
id becomes a digest (``matchers.account_tag``). The scan then refuses anything still shaped like a
credential, so a redaction rule that misses a new leak fails loudly instead of committing it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from gateway.core.matchers import ACCOUNT_HEADER, account_tag
from gateway.policy.schema import RedactionRules

REDACTED = "REDACTED"
Interaction = dict[str, Any]

_TOKEN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Harvest personal access tokens and OAuth access/refresh tokens: "<digits>.<pt|at|rt>.<key>"
    ("a Harvest token", re.compile(r"\b\d{4,}\.(?:pt|at|rt)\.[A-Za-z0-9_\-]{16,}")),
    ("a JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    ("a Bearer credential", re.compile(r"(?i)\bbearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{8,}")),
    (
        "a token parameter",
        re.compile(
            r"(?i)\b(?:access_token|refresh_token|client_secret)"
            r"(?:=|\\?\"\s*:\s*\\?\"|:\s*)(?!REDACTED)[A-Za-z0-9._~+/=-]{8,}"
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Redacted:
    interaction: Interaction
    report: tuple[str, ...]  # what was redacted, e.g. "request.headers.Authorization"


def oauth_fields(rules: RedactionRules) -> frozenset[str]:
    return frozenset(f.lower() for f in rules.body_fields)


def response_fields(rules: RedactionRules) -> frozenset[str]:
    """Body fields redacted in Harvest API responses: only those the policy adds.

    The built-in list is OAuth's (``code`` is an authorization code there, but a project's own
    code in an API response), so it applies to request bodies and Harvest ID responses only.
    """
    return frozenset(f.lower() for f in rules.body_fields) - frozenset(RedactionRules().body_fields)


def redact_interaction(
    interaction: Interaction, rules: RedactionRules, *, oauth_response: bool
) -> Redacted:
    """A redacted copy of ``interaction`` (the input is left untouched)."""
    report: list[str] = []
    req, resp = dict(interaction["request"]), dict(interaction["response"])
    req["headers"] = _headers(req["headers"], rules.headers, "request", report)
    account = req["headers"].get(ACCOUNT_HEADER)
    if account:
        tagged = [account_tag(v) for v in account]
        if tagged != account:
            req["headers"][ACCOUNT_HEADER] = tagged
            report.append(f"request.headers.{ACCOUNT_HEADER}")
    req["uri"] = _uri(req["uri"], rules.query, report)
    req["body"] = _body(req["body"], oauth_fields(rules), "request.body", report)
    resp["headers"] = _headers(resp["headers"], rules.headers, "response", report)
    fields = oauth_fields(rules) if oauth_response else response_fields(rules)
    body = dict(resp["body"])
    body["string"] = _body(body.get("string"), fields, "response.body", report)
    resp["body"] = body
    return Redacted({"request": req, "response": resp}, tuple(report))


def _headers(
    headers: dict[str, list[str]], names: Iterable[str], where: str, report: list[str]
) -> dict[str, list[str]]:
    secret = {n.lower() for n in names}
    out = {}
    for name, values in headers.items():
        if name.lower() in secret:
            out[name] = [REDACTED for _ in values]
            report.append(f"{where}.headers.{name}")
        else:
            out[name] = list(values)
    return out


def _uri(uri: str, names: Iterable[str], report: list[str]) -> str:
    parts = urlsplit(uri)
    if not parts.query:
        return uri
    secret = {n.lower() for n in names}
    kept = []
    for pair in parts.query.split("&"):
        name = unquote_plus(pair.partition("=")[0]).lower()
        if name in secret:
            report.append(f"request.query.{name}")
        else:
            kept.append(pair)  # byte-exact: no re-encoding of what stays
    return urlunsplit(parts._replace(query="&".join(kept)))


def _body(body: Any, fields: frozenset[str], where: str, report: list[str]) -> Any:
    """Redact ``fields`` in a JSON or form body given as text or bytes; anything else as is."""
    if not fields or body is None or not isinstance(body, str | bytes) or not body:
        return body
    text = body if isinstance(body, str) else _text(body)
    if text is None:
        return body
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except ValueError:
            return body
        hits: list[str] = []
        new = _redact_json(doc, fields, where, hits)
        if not hits:
            return body
        report.extend(hits)
        return json.dumps(new, separators=(",", ":"))
    if "=" in text and not any(c.isspace() for c in text.strip()):
        pairs = parse_qsl(text, keep_blank_values=True)
        if not any(k.lower() in fields for k, _ in pairs):
            return body
        report.extend(f"{where}.{k}" for k, _ in pairs if k.lower() in fields)
        return urlencode([(k, REDACTED if k.lower() in fields else v) for k, v in pairs])
    return body


def _redact_json(doc: Any, fields: frozenset[str], where: str, hits: list[str]) -> Any:
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            if isinstance(k, str) and k.lower() in fields and v is not None:
                out[k] = REDACTED
                hits.append(f"{where}.{k}")
            else:
                out[k] = _redact_json(v, fields, where, hits)
        return out
    if isinstance(doc, list):
        return [_redact_json(v, fields, where, hits) for v in doc]
    return doc


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def interaction_text(interaction: Interaction) -> str:
    """Everything an interaction would write, as one string to scan (binary read as Latin-1)."""

    def plain(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(interaction), ensure_ascii=False)


def find_secrets(text: str, known: Iterable[str] = ()) -> list[str]:
    """What in ``text`` looks like a credential: a description per finding, never the secret."""
    found = []
    for secret in known:
        if len(secret) >= 6 and secret in text:
            found.append(
                f"the credential this request was sent with (at offset {text.index(secret)})"
            )
    for label, pattern in _TOKEN_PATTERNS:
        m = pattern.search(text)
        if m:
            found.append(f"{label} (at offset {m.start()})")
    return found
