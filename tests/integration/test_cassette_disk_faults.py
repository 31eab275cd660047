"""Record mode on a read-only or full cassette directory, made real with mounts (tests run as
root, where chmod stops nothing): callers still get Harvest's answer, the file on disk stays
whole and loadable, no temp file is left behind, and the header, the metric and the log say why.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import aiohttp
import pytest
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from gateway.settings import Mode, RecordMode, Settings
from gateway.simulator import SimConfig
from gateway.simulator.data import ACCOUNT_ID_1, ADMIN_TOKEN_1, headers_for

H = headers_for(ADMIN_TOKEN_1, ACCOUNT_ID_1)


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()}): needs root and CAP_SYS_ADMIN")


@contextlib.contextmanager
def mounted(target: Path, *args: str) -> Iterator[Path]:
    mount(*args, str(target))
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def read_only(target: Path) -> contextlib.AbstractContextManager[Path]:
    @contextlib.contextmanager
    def ro() -> Iterator[Path]:
        with mounted(target, "--bind", str(target)):
            mount("-o", "remount,bind,ro", str(target))
            yield target

    return ro()


@pytest.fixture
async def recorder(start_simulator, start_gateway):
    async def start(cassettes: Path) -> tuple[str, StringIO]:
        origin, _ = await start_simulator(SimConfig())
        logs = StringIO()
        url, _ = await start_gateway(
            Settings(mode=Mode.RECORD, record_mode=RecordMode.NEW_EPISODES, upstream=origin,
                     id_upstream=origin, cassette_dir=str(cassettes), cassette="c"),
            log_stream=logs,
        )  # fmt: skip
        return url, logs

    return start


async def fetch(url: str, path: str) -> tuple[int, str, bytes, str]:
    async with aiohttp.ClientSession() as s, s.get(url + path, headers=H) as r:
        body = await r.read()
        async with s.get(url + "/metrics") as m:
            metrics = await m.text()
        return r.status, r.headers.get("X-Gateway-Record", ""), body, metrics


def loads(path: Path) -> list[str]:
    """The request URIs of a cassette, read by vcrpy itself."""
    requests, _ = FilesystemPersister.load_cassette(str(path), yamlserializer)
    return [r.uri for r in requests]


def fill(path: Path) -> None:
    """Take every block left on the file system of ``path``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def stray_files(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


async def test_a_read_only_cassette_dir_fails_the_write_not_the_request(recorder, tmp_path):
    cassettes = tmp_path / "cassettes"
    cassettes.mkdir()
    url, logs = await recorder(cassettes)
    status, record, _, _ = await fetch(url, "/v2/users/me")
    assert (status, record) == (200, "recorded")
    before = (cassettes / "c.yaml").read_bytes()
    with read_only(cassettes):
        with pytest.raises(OSError, match="Read-only") as refused:
            (cassettes / "probe").write_text("x")
        assert refused.value.errno == errno.EROFS
        status, record, body, metrics = await fetch(url, "/v2/company")
        assert status == 200
        assert json.loads(body)["name"]  # Harvest's answer, whole
        assert record == "failed: Read-only file system"
        assert 'harvestgw_cassette_interactions_total{outcome="failed"} 1.0' in metrics
        assert (cassettes / "c.yaml").read_bytes() == before
        assert stray_files(cassettes) == []
    failures = [json.loads(x) for x in logs.getvalue().splitlines() if "write_failed" in x]
    assert failures
    assert "Read-only file system" in failures[0]["error"]
    # writable again: the next write carries the interaction that could not be written before
    status, record, _, _ = await fetch(url, "/v2/tasks")
    assert (status, record) == (200, "recorded")
    assert [u.rsplit("/", 1)[-1] for u in loads(cassettes / "c.yaml")] == ["me", "company", "tasks"]


async def test_a_full_cassette_disk_fails_the_write_not_the_request(recorder, tmp_path):
    cassettes = tmp_path / "small"
    cassettes.mkdir()
    with mounted(cassettes, "-t", "tmpfs", "-o", "size=64k", "tmpfs"):
        url, logs = await recorder(cassettes)
        status, record, _, _ = await fetch(url, "/v2/users/me")
        assert (status, record) == (200, "recorded")
        before = (cassettes / "c.yaml").read_bytes()
        filler = cassettes / "filler.bin"
        fill(filler)
        status, record, body, metrics = await fetch(url, "/v2/time_entries?per_page=20")
        assert status == 200
        assert len(json.loads(body)["time_entries"]) == 20
        assert record == "failed: No space left on device"
        assert 'harvestgw_cassette_interactions_total{outcome="failed"} 1.0' in metrics
        assert (cassettes / "c.yaml").read_bytes() == before
        assert loads(cassettes / "c.yaml")[-1].endswith("/users/me")
        assert stray_files(cassettes) == []
        assert "No space left on device" in logs.getvalue()
        filler.unlink()
        status, record, _, _ = await fetch(url, "/v2/company")
        assert (status, record) == (200, "recorded")
        uris = loads(cassettes / "c.yaml")
        assert [u.split("/v2/", 1)[1].split("?")[0] for u in uris] == [
            "users/me", "time_entries", "company"
        ]  # fmt: skip
        assert stray_files(cassettes) == []
