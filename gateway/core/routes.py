"""Where a request goes and what it is called: pure functions over the request path.

Harvest serves ``/api/v2/...`` as an alias of ``/v2/...``; both are routed, keyed, counted and
labelled alike. ``/id/...`` belongs to Harvest ID (OAuth token refresh, account list).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote


class Upstream(StrEnum):
    API = "api"
    ID = "id"


# Harvest API v2 resources (from its published OpenAPI description); ids are ``{id}``.
KNOWN_TEMPLATES: frozenset[str] = frozenset(
    "/v2" + t
    for t in (
        "/clients /clients/{id} /company /contacts /contacts/{id} /estimate_item_categories "
        "/estimate_item_categories/{id} /estimates /estimates/{id} /estimates/{id}/messages "
        "/estimates/{id}/messages/{id} /expense_categories /expense_categories/{id} /expenses "
        "/expenses/{id} /invoice_item_categories /invoice_item_categories/{id} /invoices "
        "/invoices/{id} /invoices/{id}/messages /invoices/{id}/messages/new "
        "/invoices/{id}/messages/{id} /invoices/{id}/payments /invoices/{id}/payments/{id} "
        "/projects /projects/{id} /projects/{id}/task_assignments "
        "/projects/{id}/task_assignments/{id} /projects/{id}/user_assignments "
        "/projects/{id}/user_assignments/{id} /reports/expenses/categories "
        "/reports/expenses/clients /reports/expenses/projects /reports/expenses/team "
        "/reports/project_budget /reports/time/clients /reports/time/projects "
        "/reports/time/tasks /reports/time/team /reports/uninvoiced /roles /roles/{id} "
        "/task_assignments /tasks /tasks/{id} /time_entries /time_entries/{id} "
        "/time_entries/{id}/external_reference /time_entries/{id}/restart "
        "/time_entries/{id}/stop /user_assignments /users /users/me "
        "/users/me/project_assignments /users/{id} /users/{id}/billable_rates "
        "/users/{id}/billable_rates/{id} /users/{id}/cost_rates /users/{id}/cost_rates/{id} "
        "/users/{id}/project_assignments /users/{id}/teammates"
    ).split()
)
KNOWN_ID_TEMPLATES: frozenset[str] = frozenset({"/id/api/v2/oauth2/token", "/id/api/v2/accounts"})

_ID_ON_API_HOST = (["oauth2", "token"], ["accounts"])
_ID_SEGMENT = re.compile(r"^\d+$")
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_\-.~]+$")


@dataclass(frozen=True, slots=True)
class Route:
    upstream: Upstream
    path: str  # the path to request upstream, already normalised (e.g. /v2/users/me)
    template: str  # bounded label: /v2/time_entries/{id}, or /v2/{unknown}


class RouteError(ValueError):
    """The path cannot be forwarded (it is not Harvest's, or tries to leave the API)."""


def _clean_segments(raw_path: str) -> list[str]:
    """Split a path into segments, refusing anything that could escape or smuggle a host."""
    if not raw_path.startswith("/"):
        # Absolute-form (``http://host/v2/...``) or authority-form targets: the gateway only
        # ever talks to its configured upstreams, so a target naming a host is refused.
        raise RouteError("the request target must be a path (origin-form), not a URL")
    decoded = unquote(raw_path)
    # "//" is checked after decoding too: %2F%2F would otherwise become an empty segment.
    if "\\" in decoded or "\x00" in decoded or "//" in decoded:
        raise RouteError("the path contains an empty segment, a backslash or a NUL")
    segments = decoded.split("/")[1:]
    for seg in segments:
        if seg in (".", ".."):
            raise RouteError("the path contains a dot segment")
        if seg and not _SAFE_SEGMENT.match(seg):
            raise RouteError(f"the path segment {seg[:40]!r} has characters Harvest never uses")
    return segments


@functools.lru_cache(maxsize=16384)  # pure and hot: the same few paths arrive again and again
def resolve(raw_path: str) -> Route:
    """Map a caller's path onto an upstream and a normalised path.

    >>> resolve("/api/v2/users/me.json").path
    '/v2/users/me.json'
    """
    segments = _clean_segments(raw_path)
    if segments[:2] == ["api", "v2"]:
        if segments[2:] in _ID_ON_API_HOST:
            # Harvest ID's two API calls, asked of the gateway as if it were id.getharvest.com
            # (tap-harvest's token URL, moved to the gateway by a base-URL swap, takes this
            # form). The API host has no such paths, so nothing of Harvest API's is shadowed.
            path = "/" + "/".join(segments)
            return Route(Upstream.ID, path, "/id" + path)
        segments = segments[1:]
    if segments and segments[0] == "v2":
        path = "/" + "/".join(segments)
        return Route(Upstream.API, path, template_of(path))
    # Harvest ID's API lives under /api/v2/; the rest of that host (login pages, OAuth's browser
    # flow) is not an API and is not forwarded.
    if segments[:3] == ["id", "api", "v2"] and len(segments) > 3 and segments[3]:
        path = "/" + "/".join(segments[1:])
        label = "/id" + path
        return Route(Upstream.ID, path, label if label in KNOWN_ID_TEMPLATES else "/id/{unknown}")
    raise RouteError("only /v2/..., /api/v2/... and /id/api/v2/... are forwarded")


def template_of(path: str) -> str:
    """The route template of a normalised ``/v2`` path; unknown shapes share one label."""
    parts = path.split("/")
    if len(parts) > 2 and not parts[-1]:  # a trailing slash: Rails serves the same route
        parts.pop()
    if parts and parts[-1].endswith(".json"):
        parts[-1] = parts[-1][: -len(".json")]
    templ = "/".join("{id}" if _ID_SEGMENT.match(p) else p for p in parts)
    return templ if templ in KNOWN_TEMPLATES else "/v2/{unknown}"


def canonical_path(path: str) -> str:
    """The path used for cache keys and matching: a trailing slash and the ``.json`` suffix
    dropped (Rails serves the same route for both)."""
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return path[: -len(".json")] if path.endswith(".json") else path


def is_report(route: Route) -> bool:
    return route.upstream is Upstream.API and route.template.startswith("/v2/reports/")
