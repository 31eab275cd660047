"""Record the demo cassette from the simulator: ``python -m gateway.testing.demo [DIR] [NAME]``.

No real data: the simulator's accounts and tokens only. The cassette is then moved onto
``https://api.harvestapp.com`` (``cassettes rebase``), so the gateway's default upstream replays it.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.cli_cassettes import rebase_interactions
from gateway.settings import Mode, Settings
from gateway.simulator import ACCOUNT_ID_1, ADMIN_TOKEN_1, SimConfig, Simulator, headers_for
from gateway.stores import cassette_files as files
from gateway.web.app import create_app

HARVEST = "https://api.harvestapp.com"
UA = "Harvest Gateway demo (demo@example.com)"
PATHS = (
    "/v2/users/me",
    "/v2/company",
    "/v2/clients",
    "/v2/projects?per_page=2",
    "/v2/projects?per_page=2&page=2",
    "/v2/time_entries?per_page=5",
    "/v2/reports/time/projects?from=20240101&to=20241231",
)
# Lists also recorded the way most clients page them, by following ``links.next`` (Harvest's
# cursor links), so that a test which follows the links replays offline too.
FOLLOWED = frozenset({"/v2/projects?per_page=2"})


async def record(root: Path, name: str) -> int:
    """Record into a scratch directory (from scratch: never replaying an older copy), then
    replace ``root/name`` atomically: a failed run leaves the previous cassette as it was."""
    with tempfile.TemporaryDirectory() as scratch:
        data = await _record(Path(scratch), name)
    files.write(files.cassette_path(root, name), data.interactions, data.meta, {})
    return len(data.interactions)


async def _record(root: Path, name: str) -> files.CassetteFile:
    sim_server = TestServer(Simulator(SimConfig()).app(), host="127.0.0.1")
    await sim_server.start_server()
    sim = str(sim_server.make_url("")).rstrip("/")
    settings = Settings(
        mode=Mode.RECORD, upstream=sim, id_upstream=sim, cassette_dir=str(root), cassette=name
    )
    gateway = TestServer(create_app(settings), host="127.0.0.1")
    await gateway.start_server()
    base = str(gateway.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession(headers=headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1, UA)) as s:
            for target in PATHS:
                url: str | None = base + target
                while url is not None:
                    async with s.get(url) as resp:
                        if resp.headers.get("X-Gateway-Record") != "recorded":
                            raise RuntimeError(f"{url}: {resp.status} not recorded")
                        # The gateway rewrote the links onto itself: following them records.
                        url = (await resp.json())["links"]["next"] if target in FOLLOWED else None
    finally:
        await gateway.close()
        await sim_server.close()
    data = files.read(files.cassette_path(root, name))
    return replace(data, interactions=rebase_interactions(data.interactions, sim, HARVEST))


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "cassettes")
    name = argv[1] if len(argv) > 1 else "demo/harvest-basics"
    count = asyncio.run(record(root, name))
    print(f"recorded {count} interactions into {files.cassette_path(root, name)}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
