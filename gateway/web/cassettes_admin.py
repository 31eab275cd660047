"""``/_gateway/cassettes``: what the gateway has loaded, and rewinding for test isolation."""

from __future__ import annotations

from aiohttp import web

from gateway.stores.cassettes import CassetteLibrary
from gateway.web import keys
from gateway.web.own import not_admin
from gateway.web.respond import json_response

LIBRARY = web.AppKey("cassette_library", CassetteLibrary)


async def list_loaded(request: web.Request) -> web.Response:
    library = request.app[LIBRARY]
    return json_response(
        200,
        {
            "cassette_dir": str(library.root),
            "cassettes": [
                {
                    "name": c.name,
                    "existed": c.existed,
                    "interactions": len(c.loaded),
                    "played": c.played,
                    "recorded": len(c.recorded),
                }
                for c in library.loaded.values()
            ],
        },
    )


async def rewind(request: web.Request) -> web.Response:
    """Reset play positions (all cassettes, or ``?name=``) so a new test starts from the top."""
    token = request.app[keys.SETTINGS].admin_token  # none set: test suites rewind freely
    if token and (denied := not_admin(request, token)) is not None:
        return denied
    library = request.app[LIBRARY]
    name = request.query.get("name")
    rewound = []
    for cassette in library.loaded.values():
        if name is None or cassette.name == name:
            cassette.rewind()
            rewound.append(cassette.name)
    return json_response(200, {"rewound": rewound})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/_gateway/cassettes", list_loaded),
        web.post("/_gateway/cassettes/rewind", rewind),
    ]
