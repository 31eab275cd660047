"""``/_gateway/cache``: look at the cache (GET) and purge it (DELETE or POST).

Purge parameters (query string, or a JSON object body on POST): ``account`` and/or ``prefix``
(a path prefix; ``/api/v2/...`` and ``/v2/...`` alike). Neither: everything. Purging needs
``Authorization: Bearer <admin token>`` (``--admin-token``); without a configured token it is off.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.core.cache_rules import normal_prefix
from gateway.pipeline.cache import ResponseCache
from gateway.web import keys
from gateway.web.own import not_admin
from gateway.web.respond import json_response

CACHE: web.AppKey[ResponseCache] = web.AppKey("cache")


def _denied(request: web.Request) -> web.Response | None:
    expected = request.app[keys.SETTINGS].admin_token
    if not expected:
        return json_response(
            403, {"error": "admin_disabled",
                  "error_description": "Set --admin-token to enable the cache admin API."},
        )  # fmt: skip
    return not_admin(request, expected)


async def cache_stats(request: web.Request) -> web.Response:
    cache = request.app[CACHE]
    stats = await cache.publish_stats()
    return json_response(
        200,
        {
            "tiers": {t: {"entries": s.entries, "bytes": s.bytes} for t, s in stats.items()},
            "outcomes": dict(sorted(cache.counts.items())),
        },
    )


async def cache_purge(request: web.Request) -> web.Response:
    denied = _denied(request)
    if denied is not None:
        return denied
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return json_response(
                400, {"error": "invalid_json",
                      "error_description": "Send a JSON object: {\"account\", \"prefix\"}."},
            )  # fmt: skip
        params.update(body)
    account = str(params["account"]) if params.get("account") else None
    prefix = normal_prefix(str(params["prefix"])) if params.get("prefix") else None
    if prefix is not None and not prefix.startswith("/v2"):
        return json_response(
            400, {"error": "invalid_prefix",
                  "error_description": "A prefix is a Harvest path such as /v2/time_entries."},
        )  # fmt: skip
    purged = await request.app[CACHE].purge(account, (prefix,) if prefix else None)
    return json_response(200, {"purged": purged, "account": account, "prefix": prefix})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/_gateway/cache", cache_stats),
        web.delete("/_gateway/cache", cache_purge),
        web.post("/_gateway/cache", cache_purge),
    ]
