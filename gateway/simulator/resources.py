"""Harvest API v2 resources: routes and handlers over an account's records."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from . import reports
from .context import Ctx, as_bool, as_int, build_filter, parse_date
from .data import Record, link_expense, link_time_entry
from .pagination import paginate
from .payments import record_payment
from .responses import Reply, forbidden, json_reply, message, not_found, unprocessable

Handler = Callable[[Ctx, "re.Match[str]"], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    is_report: bool = False


@dataclass(frozen=True)
class Collection:
    name: str
    cursor: bool
    admin_only_read: bool = False
    admin_only_write: bool = True
    own_only: bool = False
    """Members see only their own records (``user.id``)."""
    by_id: bool = True  # ``<name>/{id}`` is served (assignments are read per project instead)
    under: tuple[str, str] | None = None
    """Listed only under one record of another collection: (that collection, path suffix), as
    an invoice's messages at ``invoices/{id}/messages``."""


def _listed_under(name: str, parent: str, suffix: str) -> Collection:
    return Collection(name, cursor=False, admin_only_read=True, by_id=False,
                      under=(parent, suffix))  # fmt: skip


COLLECTIONS: Mapping[str, Collection] = MappingProxyType(
    {
        c.name: c
        for c in (
            Collection("users", cursor=True, admin_only_read=True),
            Collection("clients", cursor=True, admin_only_read=True),
            Collection("contacts", cursor=True, admin_only_read=True),
            Collection("projects", cursor=True),
            Collection("tasks", cursor=True),
            Collection("expense_categories", cursor=True),
            Collection("time_entries", cursor=False, admin_only_write=False, own_only=True),
            Collection("expenses", cursor=False, admin_only_write=False, own_only=True),
            Collection("task_assignments", cursor=False, admin_only_read=True, by_id=False),
            Collection("user_assignments", cursor=False, admin_only_read=True, by_id=False),
            Collection("roles", cursor=False, admin_only_read=True),
            Collection("invoice_item_categories", cursor=False, admin_only_read=True),
            Collection("estimate_item_categories", cursor=False, admin_only_read=True),
            Collection("invoices", cursor=False, admin_only_read=True),
            Collection("estimates", cursor=False, admin_only_read=True),
            _listed_under("invoice_messages", "invoices", "messages"),
            _listed_under("invoice_payments", "invoices", "payments"),
            _listed_under("estimate_messages", "estimates", "messages"),
        )
    }
)

_DATED = frozenset({"time_entries", "expenses"})


def _ordered(name: str, records: Iterable[Record]) -> list[Record]:
    if name in _DATED:
        return sorted(records, key=lambda r: (r["spent_date"], r["id"]), reverse=True)
    return sorted(records, key=lambda r: int(r["id"]), reverse=True)


def _visible(ctx: Ctx, coll: Collection) -> list[Record]:
    records = ctx.data.collections[coll.name].values()
    if coll.own_only and not ctx.is_admin:
        return [r for r in records if r["user"]["id"] == ctx.grant.user_id]
    return list(records)


def _find(ctx: Ctx, coll: Collection, item_id: str) -> Record | None:
    wanted = as_int(item_id)
    record = ctx.data.collections[coll.name].get(wanted) if wanted is not None else None
    if record is None:
        return None
    if coll.own_only and not ctx.is_admin and record["user"]["id"] != ctx.grant.user_id:
        return None
    return record


def _next_id(ctx: Ctx, name: str) -> int:
    ids = ctx.data.collections[name].keys()
    return max(ids, default=int(ctx.grant.account_id[:2]) * 10**7) + 1


def list_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, _m: re.Match[str]) -> Reply:
        if coll.admin_only_read and not ctx.is_admin:
            return forbidden()
        keep = build_filter(ctx.query)
        items = _ordered(coll.name, (r for r in _visible(ctx, coll) if keep(r)))
        envelope = paginate(
            coll.name, items, ctx.query, ctx.url(coll.name), cursor_capable=coll.cursor
        )
        return json_reply(envelope)

    return handle


def project_get_handler(coll: Collection) -> Handler:
    """``projects/{id}/<coll>/{id}``: one of a project's records of ``coll``."""

    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if coll.admin_only_read and not ctx.is_admin:
            return forbidden()
        record = _find(ctx, coll, m.group("id"))
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
        keep = build_filter(ctx.query)
        mine = (r for r in _visible(ctx, coll) if parent_of(ctx, r) == parent and keep(r))
        path = f"{parent_name}/{parent}/{suffix}"
        envelope = paginate(coll.name, _ordered(coll.name, mine), ctx.query, ctx.url(path),
                            cursor_capable=coll.cursor)  # fmt: skip
        return json_reply(envelope)

    return handle


def get_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        item_id = m.group("id")
        if coll.name == "users" and not ctx.is_admin and as_int(item_id) != ctx.grant.user_id:
            return forbidden()
        if coll.admin_only_read and coll.name != "users" and not ctx.is_admin:
            return forbidden()
        record = _find(ctx, coll, item_id)
        return json_reply(record) if record is not None else not_found()

    return handle


def delete_handler(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if coll.admin_only_write and not ctx.is_admin:
            return forbidden()
        record = _find(ctx, coll, m.group("id"))
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


# --- time entries -----------------------------------------------------------------------

_TE_FIELDS = {"project_id": "Project", "task_id": "Task", "spent_date": "Spent date"}


def _check_refs(ctx: Ctx, params: dict[str, Any], required: dict[str, str]) -> list[str]:
    errors: list[str] = []
    for key, label in required.items():
        if params.get(key) in (None, ""):
            errors.append(f"{label} can't be blank")
    if "spent_date" in required and parse_date(params.get("spent_date")) is None:
        errors.append("Spent date is not a valid date")
    refs = {
        "project_id": "projects",
        "task_id": "tasks",
        "expense_category_id": "expense_categories",
    }
    for key, name in refs.items():
        if key in required and params.get(key) not in (None, ""):
            ref = as_int(params[key])
            if ref is None or ref not in ctx.data.collections[name]:
                errors.append(f"{required[key]} is not valid")
    return errors


def _acting_user(ctx: Ctx, params: dict[str, Any]) -> int | Reply:
    user_id = as_int(params.get("user_id")) if "user_id" in params else ctx.grant.user_id
    if user_id is None or user_id not in ctx.data.collections["users"]:
        return unprocessable("User is not valid")
    if user_id != ctx.grant.user_id and not ctx.is_admin:
        return forbidden()
    return user_id


def _checked_write(
    ctx: Ctx, required: dict[str, str]
) -> tuple[dict[str, Any], int, dt.date] | Reply:
    """What a dated write (time entry, expense) checks first: references, who acts, the day."""
    params = ctx.params()
    errors = _check_refs(ctx, params, required)
    if errors:
        return unprocessable(", ".join(errors))
    user_id = _acting_user(ctx, params)
    if isinstance(user_id, Reply):
        return user_id
    day = parse_date(params["spent_date"])
    assert day is not None  # _check_refs validated it
    return params, user_id, day


def create_time_entry(ctx: Ctx, _m: re.Match[str]) -> Reply:
    checked = _checked_write(ctx, _TE_FIELDS)
    if isinstance(checked, Reply):
        return checked
    params, user_id, day = checked
    running = "hours" not in params and "started_time" not in params
    task = ctx.data.collections["tasks"][int(params["task_id"])]
    entry_id = _next_id(ctx, "time_entries")
    entry: Record = {
        "id": entry_id,
        "spent_date": day.isoformat(),
        "hours": float(params.get("hours") or 0.0),
        "notes": params.get("notes"),
        "is_locked": False,
        "locked_reason": None,
        "is_closed": False,
        "is_billed": False,
        "timer_started_at": ctx.now_iso() if running else None,
        "started_time": params.get("started_time"),
        "ended_time": params.get("ended_time"),
        "is_running": running,
        "billable": bool(task["billable_by_default"]),
        "budgeted": True,
        "billable_rate": 100.0 if task["billable_by_default"] else None,
        "cost_rate": 50.0,
        "created_at": ctx.now_iso(),
        "updated_at": ctx.now_iso(),
        "invoice": None,
        "external_reference": params.get("external_reference"),
    }
    link_time_entry(ctx.data, entry, user_id, int(params["project_id"]), int(params["task_id"]))
    ctx.data.collections["time_entries"][entry_id] = entry
    return json_reply(entry, 201, {"Location": ctx.location(f"time_entries/{entry_id}")})


def update_time_entry(ctx: Ctx, m: re.Match[str]) -> Reply:
    entry = _find(ctx, COLLECTIONS["time_entries"], m.group("id"))
    if entry is None:
        return not_found()
    params = ctx.params()
    action = m.groupdict().get("action")
    if action == "stop":
        if not entry["is_running"]:
            return unprocessable("Time entry is not running")
        entry.update(is_running=False, timer_started_at=None)
    elif action == "restart":
        if entry["is_running"]:
            return unprocessable("Time entry is already running")
        entry.update(is_running=True, timer_started_at=ctx.now_iso())
    else:
        required = {k: v for k, v in _TE_FIELDS.items() if k in params}
        errors = _check_refs(ctx, params, required)
        if errors:
            return unprocessable(", ".join(errors))
        if "hours" in params:
            hours = params["hours"]
            try:
                entry["hours"] = float(hours)
            except (TypeError, ValueError):
                return unprocessable("Hours is not a number")
        for key in ("notes", "started_time", "ended_time", "external_reference"):
            if key in params:
                entry[key] = params[key]
        if "spent_date" in params:
            day = parse_date(params["spent_date"])
            assert day is not None
            entry["spent_date"] = day.isoformat()
        if "project_id" in params or "task_id" in params:
            project_id = as_int(params.get("project_id")) or entry["project"]["id"]
            task_id = as_int(params.get("task_id")) or entry["task"]["id"]
            link_time_entry(ctx.data, entry, entry["user"]["id"], project_id, task_id)
    entry["updated_at"] = ctx.now_iso()
    return json_reply(entry)


# --- expenses -----------------------------------------------------------------------------

_EXPENSE_FIELDS = {
    "project_id": "Project",
    "expense_category_id": "Expense category",
    "spent_date": "Spent date",
}


def create_expense(ctx: Ctx, _m: re.Match[str]) -> Reply:
    checked = _checked_write(ctx, _EXPENSE_FIELDS)
    if isinstance(checked, Reply):
        return checked
    params, user_id, day = checked
    expense_id = _next_id(ctx, "expenses")
    try:
        total = float(params.get("total_cost") or 0.0)
        units = float(params.get("units") or 1.0)
    except (TypeError, ValueError):
        return unprocessable("Total cost is not a number")
    expense: Record = {
        "id": expense_id,
        "notes": params.get("notes"),
        "total_cost": total,
        "units": units,
        "is_closed": False,
        "is_locked": False,
        "is_billed": False,
        "locked_reason": None,
        "spent_date": day.isoformat(),
        "created_at": ctx.now_iso(),
        "updated_at": ctx.now_iso(),
        "billable": as_bool(params.get("billable", True)),
        "receipt": None,
        "invoice": None,
    }
    upload = ctx.files().get("receipt")
    if upload is not None:
        expense["receipt"] = {
            "url": f"{ctx.data.company['base_uri']}/expenses/{expense_id}/receipt",
            "file_name": upload.filename,
            "file_size": len(upload.content),
            "content_type": upload.content_type,
        }
    link_expense(
        ctx.data,
        expense,
        user_id,
        int(params["project_id"]),
        int(params["expense_category_id"]),
    )
    ctx.data.collections["expenses"][expense_id] = expense
    return json_reply(expense, 201, {"Location": ctx.location(f"expenses/{expense_id}")})


# --- simple named records (clients, tasks) ---------------------------------------------


def create_named(coll: Collection, defaults: Callable[[Ctx], Record]) -> Handler:
    def handle(ctx: Ctx, _m: re.Match[str]) -> Reply:
        if not ctx.is_admin:
            return forbidden()
        params = ctx.params()
        if not str(params.get("name") or "").strip():
            return unprocessable("Name can't be blank")
        record = defaults(ctx)
        record.update({k: v for k, v in params.items() if k in record and k != "id"})
        record["id"] = _next_id(ctx, coll.name)
        record["created_at"] = record["updated_at"] = ctx.now_iso()
        ctx.data.collections[coll.name][record["id"]] = record
        headers = {"Location": ctx.location(f"{coll.name}/{record['id']}")}
        return json_reply(record, 201, headers)

    return handle


def update_named(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if not ctx.is_admin:
            return forbidden()
        record = _find(ctx, coll, m.group("id"))
        if record is None:
            return not_found()
        for key, value in ctx.params().items():
            if key in record and key not in ("id", "created_at", "updated_at"):
                record[key] = value
        record["updated_at"] = ctx.now_iso()
        return json_reply(record)

    return handle


def _client_defaults(ctx: Ctx) -> Record:
    return {
        "id": 0,
        "name": "",
        "is_active": True,
        "address": None,
        "statement_key": "",
        "created_at": "",
        "updated_at": "",
        "currency": ctx.data.fixture.currency,
    }


def _task_defaults(_ctx: Ctx) -> Record:
    return {
        "id": 0,
        "name": "",
        "billable_by_default": True,
        "default_hourly_rate": None,
        "is_default": False,
        "is_active": True,
        "created_at": "",
        "updated_at": "",
    }


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
        Route(
            "POST", re.compile("clients"), create_named(COLLECTIONS["clients"], _client_defaults)
        ),
        Route("PATCH", re.compile(r"clients/(?P<id>\d+)"), update_named(COLLECTIONS["clients"])),
        Route("POST", re.compile("tasks"), create_named(COLLECTIONS["tasks"], _task_defaults)),
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
