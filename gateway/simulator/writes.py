"""Harvest API v2 writes the simulator serves: time entries, expenses, and named records
(clients, tasks), each checked as Harvest checks them."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from .catalog import COLLECTIONS, Collection, Handler, find, next_id
from .context import Ctx, as_bool, as_int, parse_date
from .data import Record, link_expense, link_time_entry
from .responses import Reply, forbidden, json_reply, not_found, unprocessable

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
    entry_id = next_id(ctx, "time_entries")
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
    entry = find(ctx, COLLECTIONS["time_entries"], m.group("id"))
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
    expense_id = next_id(ctx, "expenses")
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
        record["id"] = next_id(ctx, coll.name)
        record["created_at"] = record["updated_at"] = ctx.now_iso()
        ctx.data.collections[coll.name][record["id"]] = record
        headers = {"Location": ctx.location(f"{coll.name}/{record['id']}")}
        return json_reply(record, 201, headers)

    return handle


def update_named(coll: Collection) -> Handler:
    def handle(ctx: Ctx, m: re.Match[str]) -> Reply:
        if not ctx.is_admin:
            return forbidden()
        record = find(ctx, coll, m.group("id"))
        if record is None:
            return not_found()
        for key, value in ctx.params().items():
            if key in record and key not in ("id", "created_at", "updated_at"):
                record[key] = value
        record["updated_at"] = ctx.now_iso()
        return json_reply(record)

    return handle


def client_defaults(ctx: Ctx) -> Record:
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


def task_defaults(_ctx: Ctx) -> Record:
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
