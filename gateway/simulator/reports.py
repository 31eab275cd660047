"""The ten Reports API endpoints (``/v2/reports/*``), computed from the account's records."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .context import Ctx, as_bool, parse_date
from .data import Record
from .pagination import paginate
from .responses import Reply, json_reply, unprocessable

MAX_SPAN_DAYS = 365
Grouper = Callable[[Ctx, list[Record]], list[Record]]


def _window(ctx: Ctx) -> tuple[str, str] | Reply:
    missing = [k for k in ("from", "to") if not ctx.query.get(k)]
    if missing:
        return unprocessable(", ".join(f"Parameter {k} is required" for k in missing))
    start, end = parse_date(ctx.query["from"]), parse_date(ctx.query["to"])
    if start is None or end is None:
        return unprocessable("from and to must be dates formatted as YYYYMMDD")
    if end < start:
        return unprocessable("to must not be before from")
    if (end - start).days > MAX_SPAN_DAYS:
        return unprocessable(f"The date range cannot exceed {MAX_SPAN_DAYS} days")
    return start.isoformat(), end.isoformat()


def _records(ctx: Ctx, name: str, window: tuple[str, str]) -> list[Record]:
    out = []
    for r in ctx.data.collections[name].values():
        if not window[0] <= r["spent_date"] <= window[1]:
            continue
        if not ctx.is_admin and r["user"]["id"] != ctx.grant.user_id:
            continue
        out.append(r)
    return out


def _group(records: Iterable[Record], key: Callable[[Record], Any]) -> dict[Any, list[Record]]:
    groups: dict[Any, list[Record]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return groups


def _money(value: float) -> float:
    return round(value, 2)


def _hours(rows: list[Record]) -> Record:
    total = sum(float(r["hours"]) for r in rows)
    billable_rows = [r for r in rows if r["billable"]]
    billable = sum(float(r["hours"]) for r in billable_rows)
    amount = sum(float(r["hours"]) * float(r["billable_rate"] or 0) for r in billable_rows)
    return {
        "total_hours": _money(total),
        "billable_hours": _money(billable),
        "billable_amount": _money(amount),
    }


def _amounts(rows: list[Record]) -> Record:
    return {
        "total_amount": _money(sum(float(r["total_cost"]) for r in rows)),
        "billable_amount": _money(sum(float(r["total_cost"]) for r in rows if r["billable"])),
    }


def _currency(ctx: Ctx, rows: list[Record]) -> str:
    return str(rows[0]["client"]["currency"]) if rows else ctx.data.fixture.currency


def _client(rows: list[Record]) -> Record:
    return {"client_id": rows[0]["client"]["id"], "client_name": rows[0]["client"]["name"]}


def _project(rows: list[Record]) -> Record:
    return {"project_id": rows[0]["project"]["id"], "project_name": rows[0]["project"]["name"]}


def _user(ctx: Ctx, rows: list[Record]) -> Record:
    user = ctx.data.collections["users"].get(rows[0]["user"]["id"], {})
    return {
        "user_id": rows[0]["user"]["id"],
        "user_name": rows[0]["user"]["name"],
        "is_contractor": bool(user.get("is_contractor", False)),
    }


def _by(attr: str) -> Callable[[Record], Any]:
    return lambda r: r[attr]["id"]


def time_clients(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {**_client(g), **_hours(g), "currency": _currency(ctx, g)}
        for g in _group(rows, _by("client")).values()
    ]


def time_projects(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {**_project(g), **_client(g), **_hours(g), "currency": _currency(ctx, g)}
        for g in _group(rows, _by("project")).values()
    ]


def time_tasks(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {
            "task_id": g[0]["task"]["id"],
            "task_name": g[0]["task"]["name"],
            **_hours(g),
            "currency": ctx.data.fixture.currency,
        }
        for g in _group(rows, _by("task")).values()
    ]


def time_team(ctx: Ctx, rows: list[Record]) -> list[Record]:
    out = []
    for g in _group(rows, _by("user")).values():
        user = ctx.data.collections["users"].get(g[0]["user"]["id"], {})
        out.append(
            {
                **_user(ctx, g),
                **_hours(g),
                "currency": ctx.data.fixture.currency,
                "weekly_capacity": user.get("weekly_capacity", 126000),
                "avatar_url": user.get("avatar_url"),
            }
        )
    return out


def expense_clients(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {**_client(g), **_amounts(g), "currency": _currency(ctx, g)}
        for g in _group(rows, _by("client")).values()
    ]


def expense_projects(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {**_client(g), **_project(g), **_amounts(g), "currency": _currency(ctx, g)}
        for g in _group(rows, _by("project")).values()
    ]


def expense_categories(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {
            "expense_category_id": g[0]["expense_category"]["id"],
            "expense_category_name": g[0]["expense_category"]["name"],
            **_amounts(g),
            "currency": ctx.data.fixture.currency,
        }
        for g in _group(rows, _by("expense_category")).values()
    ]


def expense_team(ctx: Ctx, rows: list[Record]) -> list[Record]:
    return [
        {**_user(ctx, g), **_amounts(g), "currency": ctx.data.fixture.currency}
        for g in _group(rows, _by("user")).values()
    ]


def _sorted(rows: list[Record]) -> list[Record]:
    name_key = next((k for k in rows[0] if k.endswith("_name")), None) if rows else None
    return sorted(rows, key=lambda r: str(r[name_key])) if name_key else rows


def dated(source: str, grouper: Grouper) -> Callable[[Ctx, re.Match[str]], Reply]:
    def handle(ctx: Ctx, _m: re.Match[str]) -> Reply:
        window = _window(ctx)
        if isinstance(window, Reply):
            return window
        rows = _sorted(grouper(ctx, _records(ctx, source, window)))
        return json_reply(paginate("results", rows, ctx.query, ctx.url(ctx.path)))

    return handle


def uninvoiced(ctx: Ctx, _m: re.Match[str]) -> Reply:
    window = _window(ctx)
    if isinstance(window, Reply):
        return window
    entries = _group(_records(ctx, "time_entries", window), _by("project"))
    expenses = _group(_records(ctx, "expenses", window), _by("project"))
    rows = []
    for pid in sorted(set(entries) | set(expenses)):
        te, ex = entries.get(pid, []), expenses.get(pid, [])
        sample = (te or ex)[0]
        open_te = [r for r in te if r["billable"] and not r["is_billed"]]
        open_ex = [r for r in ex if r["billable"] and not r["is_billed"]]
        hours_amount = sum(float(r["hours"]) * float(r["billable_rate"] or 0) for r in open_te)
        ex_amount = sum(float(r["total_cost"]) for r in open_ex)
        rows.append(
            {
                **_client([sample]),
                **_project([sample]),
                "currency": sample["client"]["currency"],
                "total_hours": _money(sum(float(r["hours"]) for r in te)),
                "uninvoiced_hours": _money(sum(float(r["hours"]) for r in open_te)),
                "uninvoiced_expenses": _money(ex_amount),
                "uninvoiced_amount": _money(hours_amount + ex_amount),
            }
        )
    return json_reply(paginate("results", _sorted(rows), ctx.query, ctx.url(ctx.path)))


def project_budget(ctx: Ctx, _m: re.Match[str]) -> Reply:
    rows = []
    only_active = ctx.query.get("is_active")
    spent_by_project = _group(ctx.data.collections["time_entries"].values(), _by("project"))
    for project in sorted(ctx.data.collections["projects"].values(), key=lambda p: p["name"]):
        if only_active is not None and bool(project["is_active"]) != as_bool(only_active):
            continue
        spent = sum(float(r["hours"]) for r in spent_by_project.get(project["id"], []))
        budget = float(project["budget"] or 0)
        rows.append(
            {
                "project_id": project["id"],
                "project_name": project["name"],
                "client_id": project["client"]["id"],
                "client_name": project["client"]["name"],
                "budget_is_monthly": project["budget_is_monthly"],
                "budget_by": project["budget_by"],
                "is_active": project["is_active"],
                "budget": budget,
                "budget_spent": _money(spent),
                "budget_remaining": _money(budget - spent),
            }
        )
    return json_reply(paginate("results", rows, ctx.query, ctx.url(ctx.path)))


REPORTS: Mapping[str, Callable[[Ctx, re.Match[str]], Reply]] = MappingProxyType(
    {
        "reports/time/clients": dated("time_entries", time_clients),
        "reports/time/projects": dated("time_entries", time_projects),
        "reports/time/tasks": dated("time_entries", time_tasks),
        "reports/time/team": dated("time_entries", time_team),
        "reports/expenses/clients": dated("expenses", expense_clients),
        "reports/expenses/projects": dated("expenses", expense_projects),
        "reports/expenses/categories": dated("expenses", expense_categories),
        "reports/expenses/team": dated("expenses", expense_team),
        "reports/uninvoiced": uninvoiced,
        "reports/project_budget": project_budget,
    }
)
