"""The baseline: a bare aiohttp server answering one fixed body (read from a file) to any GET.

``--low-level`` serves it from aiohttp's low-level ``web.Server``, with no Application and no
router: the floor of aiohttp's own cost per request (the gateway sends proxied targets past its
router, so this is the reference that sets nothing aside).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--low-level", action="store_true", help="web.Server: no Application, no router")
    args = p.parse_args()
    body = Path(args.body).read_bytes()

    async def handler(_: web.BaseRequest) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    loop = asyncio.new_event_loop()
    if args.low_level:
        loop.run_until_complete(serve_low_level(handler, args.port))
        return
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None, loop=loop)


async def serve_low_level(
    handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]], port: int
) -> None:
    runner = web.ServerRunner(web.Server(handler, access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until the benchmark terminates the process


if __name__ == "__main__":
    main()
