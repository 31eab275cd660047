"""Cassette files and the in-memory store: names, atomic writes, format, index, writers."""

from __future__ import annotations

import asyncio
import errno
import os
from typing import Any

import pytest
from vcr.persisters.filesystem import FilesystemPersister
from vcr.serializers import yamlserializer

from gateway.core.interactions import to_interaction, with_length
from gateway.core.links import HARVEST_ID as ID
from gateway.core.links import upstream_moves
from gateway.core.matchers import shape_of
from gateway.settings import RecordMode
from gateway.stores import cassette_files as files
from gateway.stores.cassette_files import CassetteNameError, cassette_path
from gateway.stores.cassettes import CassetteLibrary

API = "https://api.harvestapp.com"


def interaction(path: str, body: bytes | str = b'{"ok":true}', status: int = 200) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else body.encode()
    return with_length(
        to_interaction(
            method="GET", uri=API + path, request_headers=[("User-Agent", "t")],
            request_body=b"", status=status, reason="OK",
            response_headers=[("Content-Type", "application/json")],
            response_body=raw, moves_back=upstream_moves(API, ID, "http://gw"),
        )
    )  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["../x", "a/../../x", "/abs", ".hidden", "a/./b", "a//b", "a\\b", "", "x\x00y", "a/" * 9 + "b",
     "-dash", "a b"],
)  # fmt: skip
def test_names_that_could_escape_or_surprise_are_refused(tmp_path, name):
    with pytest.raises(CassetteNameError):
        cassette_path(tmp_path, name)


def test_good_names_and_a_symlink_escape(tmp_path):
    assert cassette_path(tmp_path, "demo/basics") == tmp_path.resolve() / "demo/basics.yaml"
    assert cassette_path(tmp_path, "x.yml") == tmp_path.resolve() / "x.yml"
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(CassetteNameError, match="outside"):
        cassette_path(tmp_path, "link/x")


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = tmp_path / "c.yaml"
    files.atomic_write(path, b"old contents\n")
    written: list[int] = []

    def full_disk(fd: int, data: memoryview) -> int:
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(os.write(fd, data[:5]))
        return written[-1]

    with pytest.raises(OSError, match="No space"):
        files.atomic_write(path, b"new contents, much longer\n", write=full_disk)
    assert path.read_bytes() == b"old contents\n"
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


def test_the_yaml_is_ascii_vcrpy_loadable_and_round_trips_text_and_binary(tmp_path):
    items = [
        interaction("/v2/users/me", '{"name":"Zoë 🚀","note":"a\\r\\nb"}'),
        interaction("/v2/reports/file", b"\xff\xfe\x00binary"),
        interaction("/v2/empty", b"", status=204),
    ]
    path = tmp_path / "c.yaml"
    files.write(path, items, [{}, {}, {}], {})
    text = path.read_bytes().decode("ascii")  # raises if anything is not ASCII
    assert "!!binary" in text
    assert "metadata" not in text
    back = files.read(path)
    assert back.existed
    assert back.interactions == items
    requests_, responses = FilesystemPersister.load_cassette(str(path), yamlserializer)
    assert [r.uri for r in requests_] == [API + p for p in ("/v2/users/me", "/v2/reports/file",
                                                             "/v2/empty")]  # fmt: skip
    assert responses[1]["body"]["string"] == b"\xff\xfe\x00binary"
    assert responses[0]["body"]["string"].decode() == '{"name":"Zoë 🚀","note":"a\\r\\nb"}'


def test_an_empty_file_is_a_new_cassette_and_garbage_is_an_error(tmp_path):
    (tmp_path / "empty.yaml").write_text("\n")
    assert not files.read(tmp_path / "empty.yaml").existed
    (tmp_path / "old.yaml").write_text("- request: {}\n")
    with pytest.raises(files.CassetteFormatError, match=r"pre-1\.0"):
        files.read(tmp_path / "old.yaml")


async def test_replay_is_indexed_in_recorded_order_with_repeat_last(tmp_path):
    items = [interaction(f"/v2/items/{i % 100}", f'{{"n":{i}}}') for i in range(1000)]
    files.write(tmp_path / "big.yaml", items, [{}] * len(items), {})
    library = CassetteLibrary(tmp_path)
    cassette = await library.get("big")
    shape = shape_of("GET", f"{API}/v2/items/7", {})
    plays = [cassette.play(shape, repeat_last=False) for _ in range(11)]
    assert [p.index for p in plays[:10] if p] == [7 + 100 * k for k in range(10)]
    assert plays[10] is None
    again = cassette.play(shape, repeat_last=True)
    assert again is not None
    assert again.repeated
    assert again.index == 907
    cassette.rewind()
    first = cassette.play(shape, repeat_last=False)
    assert first is not None
    assert first.index == 7


async def test_all_mode_replaces_the_loaded_interactions_it_re_records(tmp_path):
    files.write(tmp_path / "c.yaml", [interaction("/v2/a"), interaction("/v2/b")], [{}, {}], {})
    library = CassetteLibrary(tmp_path, record_mode=RecordMode.ALL)
    cassette = await library.get("c")
    await library.record(cassette, interaction("/v2/a", '{"new":1}'), {"n": 1})
    back = files.read(tmp_path / "c.yaml")
    assert [i["request"]["uri"] for i in back.interactions] == [f"{API}/v2/b", f"{API}/v2/a"]
    assert back.meta == [{}, {"n": 1}]
    await library.aclose()


async def test_concurrent_records_share_writes_and_lose_nothing(tmp_path):
    library = CassetteLibrary(tmp_path)
    cassette = await library.get("c")
    await asyncio.gather(
        *(library.record(cassette, interaction(f"/v2/x/{i}"), {"i": i}) for i in range(200))
    )
    back = files.read(tmp_path / "c.yaml")
    assert sorted(m["i"] for m in back.meta) == list(range(200))
    assert len({i["request"]["uri"] for i in back.interactions}) == 200
    await library.aclose()


async def test_a_failed_write_is_reported_to_every_waiting_recorder(tmp_path):
    def full_disk(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    library = CassetteLibrary(tmp_path, writer=full_disk)
    cassette = await library.get("c")
    results = await asyncio.gather(
        *(library.record(cassette, interaction(f"/v2/x/{i}"), {}) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, OSError) for r in results)
    assert not (tmp_path / "c.yaml").exists()
    assert os.listdir(tmp_path) == []
    await library.aclose()
