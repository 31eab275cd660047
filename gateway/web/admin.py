"""The gateway's own endpoints: /healthz, /readyz, /metrics (never forwarded)."""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import __version__
from gateway.web import keys
from gateway.web.respond import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok", "version": __version__, "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, dict[str, object]] = {"policy": {"ok": True, "detail": app[keys.POLICY].name}}
    for name, check in app[keys.READY_CHECKS]:
        ok, detail = await check()
        checks[name] = {"ok": ok, "detail": detail}
    ready = all(bool(c["ok"]) for c in checks.values())
    return json_response(200 if ready else 503, {"ready": ready, "checks": checks})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[keys.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)]
