"""A small Harvest-like upstream and the traffic that makes the gateway's metrics move.

Until the simulator lands this stands in for Harvest: a few JSON routes, a 429 every other
call on one route, a 500 on another, a dropped connection on a third.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from aiohttp import web

ACCOUNT = "424242"
TOKEN = "obs-test-token-5f1c"
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Harvest-Account-Id": ACCOUNT,
    "User-Agent": "harvest-gateway tests (ops@example.com)",
}
STATE = web.AppKey("state", dict)


def harvest_like_app() -> web.Application:
    app = web.Application()
    app[STATE] = {"tasks": 0}

    async def users_me(request: web.Request) -> web.Response:
        return web.json_response({"id": 1, "first_name": "Ada", "is_active": True})

    async def projects(request: web.Request) -> web.Response:
        base = "https://api.harvestapp.com/v2/projects"
        links = {
            "first": f"{base}?page=1",
            "next": None,
            "previous": None,
            "last": f"{base}?page=1",
        }
        return web.json_response({"projects": [{"id": 7}], "page": 1, "links": links})

    async def report(request: web.Request) -> web.Response:
        return web.json_response({"results": [{"client_id": 1, "total_hours": 3.5}]})

    async def tasks(request: web.Request) -> web.Response:
        # Every other call is refused as Harvest does: 429, empty body, a short Retry-After.
        app[STATE]["tasks"] += 1
        if app[STATE]["tasks"] % 2:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.json_response({"tasks": []})

    async def clients(request: web.Request) -> web.Response:
        return web.json_response({"error": "internal"}, status=500)

    async def expenses(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()  # the connection drops before any answer
        return web.Response()

    async def create_entry(request: web.Request) -> web.Response:
        return web.json_response({"id": 99}, status=201)

    async def accounts(request: web.Request) -> web.Response:
        return web.json_response({"accounts": [{"id": int(ACCOUNT), "product": "harvest"}]})

    app.router.add_get("/v2/users/me", users_me)
    app.router.add_get("/v2/projects", projects)
    app.router.add_get("/v2/reports/time/clients", report)
    app.router.add_get("/v2/tasks", tasks)
    app.router.add_get("/v2/clients", clients)
    app.router.add_get("/v2/expenses", expenses)
    app.router.add_post("/v2/time_entries", create_entry)
    app.router.add_get("/api/v2/accounts", accounts)
    return app


async def drive(session: aiohttp.ClientSession, gateways: Sequence[str]) -> list[int]:
    """One round of requests through each gateway; returns the statuses seen."""
    statuses = []
    no_agent = {k: v for k, v in HEADERS.items() if k != "User-Agent"}
    for base in gateways:
        calls: list[tuple[str, str, dict[str, str], bytes | None]] = [
            ("GET", "/v2/users/me", HEADERS, None),
            ("GET", "/api/v2/projects", HEADERS, None),
            ("GET", "/v2/reports/time/clients?from=20260101&to=20260131", HEADERS, None),
            # no-cache: every round reaches the upstream, so 429s keep coming
            ("GET", "/v2/tasks", {**HEADERS, "Cache-Control": "no-cache"}, None),
            ("GET", "/v2/clients", HEADERS, None),
            ("GET", "/v2/expenses", HEADERS, None),
            ("GET", "/v2/users/me", no_agent, None),
            ("POST", "/v2/time_entries", {**HEADERS, "Content-Type": "application/json"},
             b'{"project_id": 7, "task_id": 1, "spent_date": "2026-01-05", "hours": 1}'),
            ("GET", "/id/api/v2/accounts", HEADERS, None),
        ]  # fmt: skip
        for method, path, headers, body in calls:
            async with session.request(
                method, base + path, headers=headers, data=body, skip_auto_headers=["User-Agent"]
            ) as resp:
                await resp.read()
                statuses.append(resp.status)
    return statuses
