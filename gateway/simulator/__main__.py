"""Run the simulator standalone: ``python -m gateway.simulator --port 9001``."""

from __future__ import annotations

import argparse
import gc
import logging
from collections.abc import Sequence

from aiohttp import web

from .app import Simulator
from .config import RETRY_AFTER_MODES, SimConfig


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="python -m gateway.simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--general-limit", type=int, default=defaults.general_limit)
    p.add_argument("--general-window", type=float, default=defaults.general_window)
    p.add_argument("--reports-limit", type=int, default=defaults.reports_limit)
    p.add_argument("--reports-window", type=float, default=defaults.reports_window)
    p.add_argument("--retry-after", choices=RETRY_AFTER_MODES, default=defaults.retry_after)
    p.add_argument("--latency", type=float, default=defaults.latency)
    p.add_argument("--public-base", default=None, help="origin for absolute links/Location")
    p.add_argument("--location-prefix", default=defaults.location_prefix)
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--log-limit",
        type=int,
        default=10_000,
        help="requests kept for /__sim__/log (older half dropped when full; 0: all)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    config = SimConfig(
        general_limit=args.general_limit,
        general_window=args.general_window,
        reports_limit=args.reports_limit,
        reports_window=args.reports_window,
        retry_after=args.retry_after,
        latency=args.latency,
        public_base=args.public_base,
        location_prefix=args.location_prefix,
        log_limit=args.log_limit or None,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sim = Simulator(config)
    app = sim.app()
    # The generated records live as long as the process: out of the collector's sight, so its
    # full collections stay short and the latency of what is measured against us stays flat.
    gc.collect()
    gc.freeze()
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=logging.getLogger("aiohttp.access") if args.access_log else None,
    )


if __name__ == "__main__":
    main()
