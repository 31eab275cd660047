"""``GET /_gateway/quota``: each account's use, queue and block, as this replica sees them."""

from __future__ import annotations

from aiohttp import web

from gateway.web import keys
from gateway.web.respond import json_response


async def quota_status(request: web.Request) -> web.Response:
    admission = request.app.get(keys.ADMISSION)
    if admission is None:
        return json_response(200, {"enabled": False, "accounts": {}})
    body = await admission.snapshot()
    store = request.app.get(keys.QUOTA_STORE_HEALTH)
    ok, detail = store() if store else (True, "in-process")
    return json_response(200, {"enabled": True, "store": {"ok": ok, "detail": detail}, **body})


def routes() -> list[web.RouteDef]:
    return [web.get("/_gateway/quota", quota_status)]
