"""Harvest API v2 resources: the route table, and the reads it serves over an account's records
(the writes are in ``writes``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import reports
from .catalog import COLLECTIONS, Collection, Handler, find, ordered, visible
from .context import Ctx, as_int, build_filter
from .data import Record
from .pagination import paginate
from .payments import record_payment
from .responses import Reply, forbidden, json_reply, message, not_found
from .writes import (
    client_defaults,
    create_expense,
    create_named,
    create_time_entry,
    task_defaults,
    update_named,
    update_time_entry,
)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    is_report: bool = False


def _listed(ctx: Ctx, coll: Collection, records: Iterable[Record], path: str) -> Reply:
    """``records`` of ``coll`` as a list at ``path``: filtered by the query, newest first,
    paginated."""
    keep = build_filter(ctx.query)
    items = ordered(coll.name, (r for r in records if keep(r)))
    return json_reply(paginate(coll.name, items, ctx.query, ctx.url(path),
                               cursor_capable=coll.cursor))  # fmt: skip


def list_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, _m: re.Match[str]) -> Reply:
        if coll.admin_only_read and not ctx.is_admin:
            return forbidden()
        return _listed(ctx, coll, visible(ctx, coll), coll.name)

    return handle


def project_get_handler(coll: Collection) -> Handler:
    """``projects/{id}/<coll>/{id}``: one of a project's records of ``coll``."""

    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if coll.admin_only_read and not ctx.is_admin:
            return forbidden()
        record = find(ctx, coll, m.group("id"))
        if record is None or record["project"]["id"] != as_int(m.group("project")):
            return not_found()
        return json_reply(record)

    return handle


def _project_of(_ctx: Ctx, record: Record) -> Any:
    return record["project"]["id"]


def _kept_parent(name: str) -> Callable[[Ctx, Record], Any]:
    """Where records of ``name`` that do not name their parent find it: ``AccountData.parents``."""
    return lambda ctx, record: ctx.data.parents[name].get(record["id"])


def scoped_list_handler(
    coll: Collection, parent_name: str, suffix: str, parent_of: Callable[[Ctx, Record], Any]
) -> Handler:
    """``<parent_name>/{id}/<suffix>``: the records of ``coll`` under one record of
    ``parent_name`` (``parent_of`` names it), newest first, paginated like any list."""

    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if coll.admin_only_read and not ctx.is_admin:
            return forbidden()
        parent = as_int(m.group("parent"))
        if parent not in ctx.data.collections[parent_name]:
            return not_found()
        mine = (r for r in visible(ctx, coll) if parent_of(ctx, r) == parent)
        return _listed(ctx, coll, mine, f"{parent_name}/{parent}/{suffix}")

    return handle


def get_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        item_id = m.group("id")
        if coll.name == "users" and not ctx.is_admin and as_int(item_id) != ctx.grant.user_id:
            return forbidden()
        if coll.admin_only_read and coll.name != "users" and not ctx.is_admin:
            return forbidden()
        record = find(ctx, coll, item_id)
        return json_reply(record) if record is not None else not_found()

    return handle


def delete_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if coll.admin_only_write and not ctx.is_admin:
            return forbidden()
        record = find(ctx, coll, m.group("id"))
        if record is None:
            return not_found()
        if coll.name == "clients" and any(
            p["client"]["id"] == record["id"] for p in ctx.data.collections["projects"].values()
        ):
            return message(
                422,
                "This client is not removable. It still has projects and/or invoices.",
                hint=True,
            )
        del ctx.data.collections[coll.name][record["id"]]
        return Reply(200, b"")

    return handle


# --- users/me, company ---------------------------------------------------------------


def users_me(ctx: Ctx, _m: re.Match[str]) -> Reply:
    return json_reply(ctx.data.collections["users"][ctx.grant.user_id])


def company(ctx: Ctx, _m: re.Match[str]) -> Reply:
    if ctx.method == "PATCH":
        if not ctx.is_admin:
            return forbidden()
        for key, value in ctx.params().items():
            if key in ctx.data.company and key not in ("base_uri", "full_domain"):
                ctx.data.company[key] = value
    return json_reply(ctx.data.company)


# --- route table ----------------------------------------------------------------------------


def _routes() -> tuple[Route, ...]:
    routes: list[Route] = [
        Route("GET", re.compile(r"users/me"), users_me),
        Route("GET", re.compile(r"company"), company),
        Route("PATCH", re.compile(r"company"), company),
    ]
    for coll in COLLECTIONS.values():
        if coll.under is not None:  # kept beside them: Harvest's records do not name it
            parent, suffix = coll.under
            pattern = re.compile(rf"{parent}/(?P<parent>\d+)/{suffix}")
            parents = _kept_parent(coll.name)
            routes.append(Route("GET", pattern, scoped_list_handler(coll, parent, suffix, parents)))
            continue
        base = re.escape(coll.name)
        routes.append(Route("GET", re.compile(base), list_handler(coll)))
        if coll.by_id:
            routes.append(Route("GET", re.compile(rf"{base}/(?P<id>\d+)"), get_handler(coll)))
        if coll.name in ("time_entries", "expenses", "clients", "tasks"):
            routes.append(Route("DELETE", re.compile(rf"{base}/(?P<id>\d+)"), delete_handler(coll)))
    for kind in ("task_assignments", "user_assignments"):  # also listed and read per project
        pattern = re.compile(rf"projects/(?P<parent>\d+)/{kind}")
        listed = scoped_list_handler(COLLECTIONS[kind], "projects", kind, _project_of)
        routes.append(Route("GET", pattern, listed))
        one = re.compile(rf"projects/(?P<project>\d+)/{kind}/(?P<id>\d+)")
        routes.append(Route("GET", one, project_get_handler(COLLECTIONS[kind])))
    te = r"time_entries/(?P<id>\d+)"
    routes += [
        Route("POST", re.compile("time_entries"), create_time_entry),
        Route("PATCH", re.compile(te), update_time_entry),
        Route("PATCH", re.compile(rf"{te}/(?P<action>stop|restart)"), update_time_entry),
        Route("POST", re.compile("expenses"), create_expense),
        Route("POST", re.compile("clients"), create_named(COLLECTIONS["clients"], client_defaults)),
        Route("PATCH", re.compile(r"clients/(?P<id>\d+)"), update_named(COLLECTIONS["clients"])),
        Route("POST", re.compile("tasks"), create_named(COLLECTIONS["tasks"], task_defaults)),
        Route("PATCH", re.compile(r"tasks/(?P<id>\d+)"), update_named(COLLECTIONS["tasks"])),
        Route("PATCH", re.compile(r"expenses/(?P<id>\d+)"), update_named(COLLECTIONS["expenses"])),
        Route("POST", re.compile(r"invoices/(?P<invoice>\d+)/payments"), record_payment),
    ]
    for name, handler in reports.REPORTS.items():
        routes.append(Route("GET", re.compile(re.escape(name)), handler, is_report=True))
    return tuple(routes)


ROUTES: tuple[Route, ...] = _routes()


def resolve(method: str, path: str) -> tuple[Route, re.Match[str]] | None:
    """The route for ``method`` and ``path`` (relative to ``/v2``), if any."""
    for route in ROUTES:
        if route.method != method:
            continue
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route, match
    return None


def is_report_path(path: str) -> bool:
    return path.startswith("reports/")
