"""The baseline: a bare aiohttp server answering one fixed body (read from a file) to any GET."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body", required=True)
    args = p.parse_args()
    body = Path(args.body).read_bytes()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()
