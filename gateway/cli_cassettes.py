"""``harvest-gateway cassettes ...``: list, show, lint, redact and rebase cassettes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from gateway.core.cassette_lint import lint_document
from gateway.core.interactions import as_bytes, with_length
from gateway.core.links import rewrite_links, rewrite_url
from gateway.core.redact import find_secrets, interaction_text, redact_interaction
from gateway.policy.load import PolicyError, load_policy
from gateway.stores import cassette_files as files


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], env: dict[str, str]
) -> None:
    p = sub.add_parser("cassettes", help="inspect and maintain cassettes")
    p.add_argument("--cassette-dir", default=env.get("cassette_dir", "cassettes"))
    csub = p.add_subparsers(dest="cassettes_command", required=True)
    csub.add_parser("list", help="every cassette under the directory, with counts")
    show = csub.add_parser("show", help="the interactions of one cassette")
    show.add_argument("name")
    show.add_argument("--bodies", action="store_true", help="print response bodies too")
    lint = csub.add_parser(
        "lint", help="format, secrets and vcrpy loadability (exit 1 on problems)"
    )
    lint.add_argument("names", nargs="*", help="default: every cassette")
    red = csub.add_parser("redact", help="apply the redaction policy to a cassette in place")
    red.add_argument("name")
    red.add_argument("--policy", default=env.get("policy"))
    rebase = csub.add_parser(
        "rebase", help="move a cassette to another upstream origin (URIs, links, Location)"
    )
    rebase.add_argument("name")
    rebase.add_argument("--from", dest="old", required=True, metavar="ORIGIN")
    rebase.add_argument("--to", dest="new", required=True, metavar="ORIGIN")


def run(args: argparse.Namespace) -> int:
    root = Path(args.cassette_dir)
    try:
        command = args.cassettes_command
        if command == "list":
            return _list(root)
        if command == "show":
            return _show(root, args.name, args.bodies)
        if command == "lint":
            return _lint(root, args.names)
        if command == "redact":
            return _redact(root, args.name, args.policy)
        return _rebase(root, args.name, args.old.rstrip("/"), args.new.rstrip("/"))
    except (files.CassetteNameError, files.CassetteFormatError, PolicyError, OSError) as exc:
        _err(f"harvest-gateway cassettes: {exc}")
        return 2


def _out(text: str) -> None:
    print(text)  # noqa: T201


def _err(text: str) -> None:
    print(text, file=sys.stderr)  # noqa: T201


def _list(root: Path) -> int:
    paths = files.list_cassettes(root)
    if not paths:
        _out(f"no cassettes under {root}")
    for path in paths:
        name = files.cassette_name(root, path)
        try:
            data = files.read(path)
        except files.CassetteFormatError as exc:
            _out(f"{name}\tunreadable: {exc}")
            continue
        stamps = sorted(m["recorded_at"] for m in data.meta if m.get("recorded_at"))
        when = f"\t{stamps[0]} .. {stamps[-1]}" if stamps else ""
        size = path.stat().st_size
        _out(f"{name}\t{len(data.interactions)} interactions\t{size} bytes{when}")
    return 0


def _show(root: Path, name: str, bodies: bool) -> int:
    path = files.cassette_path(root, name)
    data = files.read(path)
    if not data.existed:
        _err(f"no cassette {name!r} under {root}")
        return 1
    for n, (item, meta) in enumerate(zip(data.interactions, data.meta, strict=True)):
        req, resp = item["request"], item["response"]
        size = len(as_bytes(resp["body"]["string"]))
        when = f"  ({meta['recorded_at']})" if meta.get("recorded_at") else ""
        _out(f"{n:4d}  {req['method']} {req['uri']}  ->  {resp['status']['code']}  {size} B{when}")
        if bodies:
            _out("      " + as_bytes(resp["body"]["string"]).decode("utf-8", "replace")[:2000])
    return 0


def _lint(root: Path, names: list[str]) -> int:
    paths = [files.cassette_path(root, n) for n in names] or files.list_cassettes(root)
    failed = 0
    for path in paths:
        problems = lint_file(path)
        label = files.cassette_name(root, path) if path.exists() else str(path)
        if problems:
            failed += 1
            for problem in problems:
                _out(f"{label}: {problem}")
        else:
            _out(f"{label}: ok")
    return 1 if failed else 0


def lint_file(path: Path) -> list[str]:
    """Every problem with a cassette file: format, secrets, and whether vcrpy loads it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return ["no such cassette"]
    except UnicodeDecodeError:
        return ["the file is not UTF-8 (vcrpy warns and records over it)"]
    try:
        doc = yaml.load(text, Loader=files.CassetteLoader)  # a safe loader subclass
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {exc}"]
    problems = lint_document(doc, text)
    problems += _vcrpy_load(path)
    return problems


def _vcrpy_load(path: Path) -> list[str]:
    from vcr.persisters.filesystem import FilesystemPersister  # vcrpy is only needed here
    from vcr.serializers import yamlserializer

    try:
        FilesystemPersister.load_cassette(str(path), yamlserializer)
    except Exception as exc:
        return [f"vcrpy 9 cannot load it: {type(exc).__name__}: {exc}"]
    return []


def _rewrite(root: Path, name: str) -> tuple[Path, files.CassetteFile]:
    path = files.cassette_path(root, name)
    data = files.read(path)
    if not data.existed:
        raise files.CassetteFormatError(f"no cassette {name!r} under {root}")
    return path, data


def _save(path: Path, data: files.CassetteFile, interactions: list[dict[str, Any]]) -> None:
    files.write(path, interactions, data.meta, {"rewritten_by": "harvest-gateway cassettes"})


def _redact(root: Path, name: str, policy_path: str | None) -> int:
    rules = load_policy(policy_path).redaction
    path, data = _rewrite(root, name)
    out: list[dict[str, Any]] = []
    report: list[str] = []
    for item in data.interactions:
        oauth = "/oauth2/" in item["request"]["uri"] or "/accounts" in item["request"]["uri"]
        red = redact_interaction(item, rules, oauth_response=oauth)
        out.append(with_length(red.interaction) if red.report else red.interaction)
        report += red.report
    leaks = [
        f"interaction {n}: {leak}"
        for n, item in enumerate(out)
        for leak in find_secrets(interaction_text(item))
    ]
    if leaks:
        _err(
            "not written: credential-shaped strings remain after redaction:\n  "
            + "\n  ".join(leaks)
        )
        return 1
    _save(path, data, out)
    _out(f"{name}: {len(report)} value(s) redacted")
    return 0


def rebase_interactions(
    interactions: list[dict[str, Any]], old: str, new: str
) -> list[dict[str, Any]]:
    """The interactions moved from origin ``old`` to ``new``: URIs, ``links.*``, ``Location``."""
    out = []
    for item in interactions:
        req, resp = dict(item["request"]), dict(item["response"])
        req["uri"] = rewrite_url(req["uri"], old, new)
        headers = {
            k: [rewrite_url(v, old, new) for v in vs] if k.lower() == "location" else vs
            for k, vs in resp["headers"].items()
        }
        body = resp["body"]["string"]
        if isinstance(body, str):
            body = rewrite_links(body.encode(), ((old, new),)).decode()
        resp = {**resp, "headers": headers, "body": {"string": body}}
        out.append(with_length({"request": req, "response": resp}))
    return out


def _rebase(root: Path, name: str, old: str, new: str) -> int:
    path, data = _rewrite(root, name)
    out = rebase_interactions(data.interactions, old, new)
    _save(path, data, out)
    moved = sum(
        a["request"]["uri"] != b["request"]["uri"]
        for a, b in zip(out, data.interactions, strict=True)
    )
    _out(f"{name}: {moved} of {len(out)} URIs moved from {old} to {new}")
    return 0
