"""Cassette files on disk: names, vcrpy version-1 YAML, the sidecar, atomic writes.

Everything here is synchronous and blocking; ``gateway.stores.cassettes`` runs it in threads.

The YAML is what vcrpy 9.4 itself writes and reads: top-level ``interactions`` and ``version: 1``
(never ``metadata``, which pytest-recording cannot load), request keys exactly ``body, headers,
method, uri``, header values as lists, ``status.message`` and ``body.string`` always present,
ASCII only (vcrpy opens cassettes in the locale's encoding), bytes that are not UTF-8 as
``!!binary``. Our own per-interaction metadata goes in ``NAME.meta.json`` beside the cassette.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's C loader and dumper are several times faster when present
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

FORMAT_VERSION = 1
META_FORMAT = "harvest-gateway-cassette-meta/1"
REQUEST_KEYS = ("body", "headers", "method", "uri")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
_SUFFIXES = (".yaml", ".yml")

Interaction = dict[str, Any]
Writer = Callable[[int, memoryview], int]


class CassetteNameError(ValueError):
    """A cassette name that is malformed or would reach outside the cassette directory."""


class CassetteFormatError(ValueError):
    """A file that is not a vcrpy version-1 cassette."""


class CassetteLoader(_Loader):
    """A safe loader that also reads the harmless Python tags old vcrpy cassettes carry."""


def _scalar(loader: Any, node: Any) -> Any:
    return loader.construct_scalar(node)


def _sequence(loader: Any, node: Any) -> Any:
    return list(loader.construct_sequence(node))


for _tag in ("python/str", "python/unicode"):
    CassetteLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _scalar)
CassetteLoader.add_constructor("tag:yaml.org,2002:python/tuple", _sequence)


def cassette_path(root: Path, name: str) -> Path:
    """``root/NAME.yaml`` for a valid name; never a path outside ``root`` (symlinks included).

    A name is one or more ``/``-separated segments of letters, digits, ``_ . -`` that start with
    a letter or digit, optionally ending in ``.yaml`` or ``.yml``.
    """
    if not name or len(name) > 255 or "\\" in name or "\x00" in name:
        raise CassetteNameError(f"invalid cassette name {name[:80]!r}")
    segments = name.split("/")
    if len(segments) > 8 or not all(_SEGMENT.match(s) for s in segments):
        raise CassetteNameError(
            f"invalid cassette name {name[:80]!r}: use segments of letters, digits, '_', '.', "
            "'-' separated by '/', each starting with a letter or digit"
        )
    file = name if name.endswith(_SUFFIXES) else name + ".yaml"
    base = root.resolve()
    path = (base / file).resolve()
    if not path.is_relative_to(base):
        raise CassetteNameError(f"cassette name {name[:80]!r} reaches outside the cassette dir")
    return path


def meta_path(path: Path) -> Path:
    return path.with_name(path.name.rsplit(".", 1)[0] + ".meta.json")


def cassette_name(root: Path, path: Path) -> str:
    """The name a cassette file is known by (its path under ``root`` without ``.yaml``)."""
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    return rel[: -len(".yaml")] if rel.endswith(".yaml") else rel


@dataclass(slots=True)
class CassetteFile:
    interactions: list[Interaction] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)  # aligned with interactions
    existed: bool = False


def parse(text: str) -> list[Interaction]:
    """The interactions of a cassette's YAML text, normalised (header values as lists)."""
    try:
        data = yaml.load(text, Loader=CassetteLoader)
    except yaml.YAMLError as exc:
        raise CassetteFormatError(f"not valid YAML: {exc}") from exc
    if isinstance(data, list):
        raise CassetteFormatError("a pre-1.0 vcrpy cassette (a top-level list); migrate it")
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteFormatError("no 'interactions' list at the top level")
    return [_normalise(i, n) for n, i in enumerate(data["interactions"])]


def _normalise(item: Any, n: int) -> Interaction:
    if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
        raise CassetteFormatError(f"interaction {n}: no 'request' mapping")
    req, resp = item["request"], item.get("response")
    if not isinstance(resp, dict):
        raise CassetteFormatError(f"interaction {n}: no 'response' mapping")
    missing = [k for k in ("method", "uri") if not isinstance(req.get(k), str)]
    if missing:
        raise CassetteFormatError(f"interaction {n}: request has no {' or '.join(missing)}")
    status = resp.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("code"), int):
        raise CassetteFormatError(f"interaction {n}: response has no status.code")
    body: dict[str, Any] = resp["body"] if isinstance(resp.get("body"), dict) else {}
    return {
        "request": {
            "body": req.get("body"),
            "headers": _header_lists(req.get("headers")),
            "method": req["method"],
            "uri": req["uri"],
        },
        "response": {
            "body": {"string": body.get("string", "")},
            "headers": _header_lists(resp.get("headers")),
            "status": {"code": status["code"], "message": str(status.get("message") or "")},
        },
    }


def _header_lists(headers: Any) -> dict[str, list[str]]:
    if not isinstance(headers, dict):
        return {}
    out: dict[str, list[str]] = {}
    for k, v in headers.items():
        values = v if isinstance(v, list | tuple) else [v]
        out[str(k)] = [str(x) for x in values]
    return out


def dump(interactions: list[Interaction]) -> str:
    """vcrpy version-1 YAML (sorted keys, block style, ASCII with escapes)."""
    data = {"interactions": interactions, "version": FORMAT_VERSION}
    text: str = yaml.dump(data, Dumper=_Dumper, allow_unicode=False, default_flow_style=False)
    return text


def read(path: Path) -> CassetteFile:
    """A cassette and its sidecar; a missing or empty file is an empty, new cassette (as vcrpy)."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return CassetteFile()
    if not text.strip():
        return CassetteFile()
    interactions = parse(text)
    meta = _read_meta(meta_path(path))
    meta = (meta + [{}] * len(interactions))[: len(interactions)]
    return CassetteFile(interactions, meta, existed=True)


def _read_meta(path: Path) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return []  # the sidecar is advisory: a cassette replays without it
    items = doc.get("interactions") if isinstance(doc, dict) else None
    return [i if isinstance(i, dict) else {} for i in items] if isinstance(items, list) else []


def atomic_write(path: Path, data: bytes, *, write: Writer = os.write) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new, never a mix.

    Temp file in the same directory, fsync, ``os.replace``, fsync of the directory. On any error
    (a full disk included) the temp file is removed and the old file is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write(
    path: Path,
    interactions: list[Interaction],
    meta: list[dict[str, Any]],
    info: dict[str, Any],
    *,
    writer: Writer = os.write,
) -> None:
    """Write the cassette, then its sidecar (each atomically)."""
    atomic_write(path, dump(interactions).encode("ascii"), write=writer)
    sidecar = {"format": META_FORMAT, **info, "interactions": meta}
    atomic_write(meta_path(path), (json.dumps(sidecar, indent=1) + "\n").encode(), write=writer)


def list_cassettes(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in _SUFFIXES and p.is_file() and not p.name.startswith(".")
    )
