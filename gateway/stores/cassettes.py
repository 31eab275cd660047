"""Cassettes in memory: an indexed player, and one writer task per cassette.

A cassette is loaded once (in a thread) the first time a request names it. Its interactions are
indexed by their match key, so finding the next unplayed answer is a dict lookup and a cursor,
whatever the cassette's size. Repeated identical requests play in recorded order.

Recording appends in memory (one event loop: no interaction is lost to a race) and wakes the
cassette's writer task, which writes the whole file atomically in a thread; every recorder
awaiting that write learns whether it reached the disk. Writes to one cassette never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.clock import Clock, SystemClock
from gateway.core.matchers import Key, Near, Shape, closest, shape_of
from gateway.settings import RecordMode
from gateway.stores import cassette_files as files
from gateway.stores.cassette_files import Interaction, Writer


@dataclass(slots=True)
class Entry:
    interaction: Interaction
    shape: Shape
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Played:
    index: int  # position in the file as loaded
    interaction: Interaction
    repeated: bool  # served again under replay_repeat_last


class Cassette:
    """One cassette's state: what was loaded (playable), what was recorded since, play cursors."""

    def __init__(self, name: str, path: Path, loaded: list[Entry], *, existed: bool) -> None:
        self.name = name
        self.path = path
        self.existed = existed
        self.loaded = loaded
        self.recorded: list[Entry] = []
        self._index: dict[Key, list[int]] = {}
        self._cursor: dict[Key, int] = {}
        for i, entry in enumerate(loaded):
            self._index.setdefault(entry.shape.key, []).append(i)

    @property
    def played(self) -> int:
        return sum(min(c, len(self._index[k])) for k, c in self._cursor.items())

    def _keys(self, shape: Shape) -> list[Key]:
        keys = [shape.key]
        if shape.account is not None:
            keys.append(shape.without_account().key)  # recordings without an account match any
        return keys

    def playable(self, shape: Shape, *, repeat_last: bool) -> bool:
        for key in self._keys(shape):
            hits = self._index.get(key)
            if hits and (self._cursor.get(key, 0) < len(hits) or repeat_last):
                return True
        return False

    def play(self, shape: Shape, *, repeat_last: bool) -> Played | None:
        """The next unplayed loaded interaction for ``shape`` (or the last one again)."""
        for key in self._keys(shape):
            hits = self._index.get(key)
            if not hits:
                continue
            at = self._cursor.get(key, 0)
            if at < len(hits):
                self._cursor[key] = at + 1
                return Played(hits[at], self.loaded[hits[at]].interaction, repeated=False)
            if repeat_last:
                return Played(hits[-1], self.loaded[hits[-1]].interaction, repeated=True)
        return None

    def exhausted(self, shape: Shape) -> int:
        """How many recordings match ``shape`` exactly (all already played, on a miss)."""
        return sum(len(self._index.get(k, ())) for k in self._keys(shape))

    def closest(self, shape: Shape, limit: int = 3) -> list[Near]:
        return closest(shape, ((i, e.shape) for i, e in enumerate(self.loaded)), limit)

    def rewind(self) -> None:
        self._cursor.clear()

    def append(self, entry: Entry) -> None:
        self.recorded.append(entry)

    def snapshot(self, mode: RecordMode) -> list[Entry]:
        """What the file should hold now. Under ``all``, new recordings replace the loaded
        interactions they match (vcrpy's rule); otherwise they are appended."""
        if mode is not RecordMode.ALL or not self.recorded:
            return [*self.loaded, *self.recorded]
        fresh = {e.shape.key for e in self.recorded}
        fresh |= {e.shape.without_account().key for e in self.recorded}
        kept = [e for e in self.loaded if e.shape.key not in fresh]
        return [*kept, *self.recorded]


class CassetteLibrary:
    """The cassettes under one directory, loaded on first use, each with its own writer task."""

    def __init__(
        self,
        root: Path,
        *,
        ignored_query: Iterable[str] = (),
        record_mode: RecordMode = RecordMode.ONCE,
        writer: Writer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.root = root
        self.clock: Clock = clock or SystemClock()
        self.ignored_query = tuple(ignored_query)
        self.record_mode = record_mode
        self._writer = writer
        self._cassettes: dict[str, Cassette] = {}
        self._loading: dict[str, asyncio.Task[Cassette]] = {}
        self._writers: dict[str, _WriterTask] = {}

    def path_for(self, name: str) -> Path:
        return files.cassette_path(self.root, name)

    def shape(self, interaction: Interaction) -> Shape:
        req = interaction["request"]
        return shape_of(req["method"], req["uri"], req["headers"], self.ignored_query)

    @property
    def loaded(self) -> dict[str, Cassette]:
        return dict(self._cassettes)

    async def get(self, name: str) -> Cassette:
        """The cassette called ``name``, loading it once however many requests ask at once."""
        found = self._cassettes.get(name)
        if found is not None:
            return found
        path = self.path_for(name)  # raises CassetteNameError before any I/O
        task = self._loading.get(name)
        if task is None:
            task = asyncio.create_task(self._load(name, path))
            self._loading[name] = task
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._loading.pop(name, None)

    async def _load(self, name: str, path: Path) -> Cassette:
        data = await asyncio.to_thread(files.read, path)
        entries = await asyncio.to_thread(self._entries, data)
        cassette = Cassette(name, path, entries, existed=data.existed)
        self._cassettes[name] = cassette
        # A loaded cassette is long-lived and never changes: keep the cyclic GC from walking its
        # hundreds of thousands of containers on every full collection.
        gc.freeze()
        return cassette

    def _entries(self, data: files.CassetteFile) -> list[Entry]:
        return [
            Entry(i, self.shape(i), m) for i, m in zip(data.interactions, data.meta, strict=True)
        ]

    async def record(
        self, cassette: Cassette, interaction: Interaction, meta: dict[str, Any]
    ) -> None:
        """Append an interaction and return once it is on disk (raises if the write failed)."""
        cassette.append(Entry(interaction, self.shape(interaction), meta))
        writer = self._writers.get(cassette.name)
        if writer is None:
            writer = self._writers[cassette.name] = _WriterTask(self, cassette)
        await writer.flush()

    def write_entries(self, path: Path, entries: list[Entry], written_at: float) -> None:
        """Blocking: write a snapshot of a cassette (run in a thread by its writer task)."""
        info = {"gateway_version": __version__, "written_at": iso_time(written_at)}
        files.write(
            path,
            [e.interaction for e in entries],
            [e.meta for e in entries],
            info,
            **({"writer": self._writer} if self._writer else {}),
        )

    async def aclose(self) -> None:
        """Finish pending writes, then stop the writer tasks."""
        for writer in list(self._writers.values()):
            await writer.close()
        self._writers.clear()
        for task in self._loading.values():
            task.cancel()


class _WriterTask:
    """Serialises one cassette's writes; requests arriving during a write share the next one."""

    def __init__(self, library: CassetteLibrary, cassette: Cassette) -> None:
        self._library = library
        self._cassette = cassette
        self._waiting: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"cassette-writer:{cassette.name}")

    async def flush(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self._wake.set()
        await asyncio.shield(fut)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            waiting, self._waiting = self._waiting, []
            lib, cassette = self._library, self._cassette
            entries = cassette.snapshot(lib.record_mode)  # taken on the loop, written in a thread
            try:
                await asyncio.to_thread(lib.write_entries, cassette.path, entries, lib.clock.wall())
            except Exception as exc:
                for fut in waiting:
                    if not fut.done():
                        fut.set_exception(exc)
            else:
                for fut in waiting:
                    if not fut.done():
                        fut.set_result(None)

    async def close(self) -> None:
        if self._waiting:
            pending = list(self._waiting)
            self._wake.set()
            await asyncio.gather(*pending, return_exceptions=True)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
