"""Synthetic fixtures: two Harvest accounts, their tokens and their records.

Everything here is either immutable or built fresh by :func:`build_account`, so two
simulators never share state. The names and ids of the two accounts are disjoint
(account 111111 ids start with ``11``, account 222222 ids with ``22``) so that a leak
from one account into the other is visible in a test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from .billing import BILLING_COLLECTIONS, Parents, add_billing

Record = dict[str, Any]

ACCOUNT_ID_1: Final = "111111"
ACCOUNT_ID_2: Final = "222222"

ADMIN_TOKEN_1: Final = "sim-admin-111111"
MEMBER_TOKEN_1: Final = "sim-member-111111"
ADMIN_TOKEN_2: Final = "sim-admin-222222"
MEMBER_TOKEN_2: Final = "sim-member-222222"
OUTSIDER_TOKEN: Final = "sim-outsider"
"""A valid Harvest ID token that belongs to no account: every API call gets 401."""
NO_ACCESS_TOKEN: Final = OUTSIDER_TOKEN

REFRESH_TOKEN_1: Final = "sim-refresh-111111"
"""OAuth refresh token; its access tokens act as the admin of account 111111."""
REFRESH_TOKEN_2: Final = "sim-refresh-222222"
OAUTH_CLIENT_ID: Final = "sim-client-id"
OAUTH_CLIENT_SECRET: Final = "sim-client-secret"

DEFAULT_USER_AGENT: Final = "SimTest (dev@example.com)"
TIME_ENTRIES_PER_ACCOUNT: Final = 250
EPOCH: Final = dt.datetime(2024, 6, 1, 9, 0, 0, tzinfo=dt.UTC)
"""Wall-clock time of the simulator's clock zero (used for created_at/updated_at)."""


@dataclass(frozen=True)
class Person:
    id: int
    first_name: str
    last_name: str
    email: str
    is_admin: bool
    is_contractor: bool = False

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class AccountFixture:
    account_id: str
    name: str
    subdomain: str
    currency: str
    admin_token: str
    member_token: str
    refresh_token: str
    people: tuple[Person, ...]
    clients: tuple[tuple[int, str, str], ...]
    """(id, name, currency)"""
    projects: tuple[tuple[int, str, str, int, float], ...]
    """(id, name, code, client_id, budget)"""
    tasks: tuple[tuple[int, str, bool], ...]
    """(id, name, billable_by_default)"""
    contacts: tuple[tuple[int, str, str, int], ...]
    """(id, first_name, last_name, client_id)"""
    expense_categories: tuple[tuple[int, str], ...]

    @property
    def admin(self) -> Person:
        return self.people[0]

    @property
    def member(self) -> Person:
        return self.people[1]


@dataclass(frozen=True)
class Grant:
    """What a token may do: act as ``user_id`` in ``account_id``."""

    account_id: str
    user_id: int
    is_admin: bool


ACCOUNTS: Final[Mapping[str, AccountFixture]] = MappingProxyType(
    {
        ACCOUNT_ID_1: AccountFixture(
            account_id=ACCOUNT_ID_1,
            name="Larkspur Studio",
            subdomain="larkspur",
            currency="USD",
            admin_token=ADMIN_TOKEN_1,
            member_token=MEMBER_TOKEN_1,
            refresh_token=REFRESH_TOKEN_1,
            people=(
                Person(1100001, "Maya", "Lindqvist", "maya@larkspur.example", True),
                Person(1100002, "Owen", "Carter", "owen@larkspur.example", False),
                Person(1100003, "Priya", "Raman", "priya@larkspur.example", False),
                Person(1100004, "Tomas", "Nyberg", "tomas@larkspur.example", False, True),
            ),
            clients=(
                (1110001, "Blue Heron Books", "USD"),
                (1110002, "Cedar & Pine Architects", "EUR"),
                (1110003, "Quarry Lane Bakery", "USD"),
            ),
            projects=(
                (1120001, "Heron Catalogue Redesign", "BHB-01", 1110001, 120.0),
                (1120002, "Cedar Portfolio Site", "CPA-01", 1110002, 80.0),
                (1120003, "Quarry Lane Menu Boards", "QLB-01", 1110003, 40.0),
                (1120004, "Heron Newsletter", "BHB-02", 1110001, 60.0),
            ),
            tasks=(
                (1130001, "Design", True),
                (1130002, "Illustration", True),
                (1130003, "Project Management", True),
                (1130004, "Internal Review", False),
            ),
            contacts=(
                (1140001, "Hana", "Whitfield", 1110001),
                (1140002, "Lucas", "Brandt", 1110002),
                (1140003, "Imogen", "Pike", 1110003),
            ),
            expense_categories=((1170001, "Printing"), (1170002, "Travel"), (1170003, "Software")),
        ),
        ACCOUNT_ID_2: AccountFixture(
            account_id=ACCOUNT_ID_2,
            name="Meridian Analytics",
            subdomain="meridian",
            currency="GBP",
            admin_token=ADMIN_TOKEN_2,
            member_token=MEMBER_TOKEN_2,
            refresh_token=REFRESH_TOKEN_2,
            people=(
                Person(2200001, "Jonas", "Okafor", "jonas@meridian.example", True),
                Person(2200002, "Rita", "Marsh", "rita@meridian.example", False),
                Person(2200003, "Kenji", "Watanabe", "kenji@meridian.example", False),
                Person(2200004, "Sofia", "Duarte", "sofia@meridian.example", False, True),
            ),
            clients=(
                (2210001, "Harbor Freight Lines", "GBP"),
                (2210002, "Northgate Clinics", "GBP"),
                (2210003, "Solstice Energy", "USD"),
            ),
            projects=(
                (2220001, "Harbor Route Forecasting", "HFL-A", 2210001, 300.0),
                (2220002, "Northgate Wait-Time Dashboard", "NGC-A", 2210002, 150.0),
                (2220003, "Solstice Demand Model", "SOL-A", 2210003, 220.0),
                (2220004, "Harbor Data Audit", "HFL-B", 2210001, 50.0),
            ),
            tasks=(
                (2230001, "Data Engineering", True),
                (2230002, "Modelling", True),
                (2230003, "Reporting", True),
                (2230004, "Sales Support", False),
            ),
            contacts=(
                (2240001, "Aisha", "Bello", 2210001),
                (2240002, "Conor", "Doyle", 2210002),
                (2240003, "Mei", "Lin", 2210003),
            ),
            expense_categories=(
                (2270001, "Cloud Compute"),
                (2270002, "Rail Fares"),
                (2270003, "Meals"),
            ),
        ),
    }
)


def _grants() -> Mapping[str, Grant]:
    out: dict[str, Grant] = {}
    for acct in ACCOUNTS.values():
        out[acct.admin_token] = Grant(acct.account_id, acct.admin.id, True)
        out[acct.member_token] = Grant(acct.account_id, acct.member.id, False)
    return MappingProxyType(out)


TOKENS: Final[Mapping[str, Grant]] = _grants()
"""Static personal access tokens -> grant. ``OUTSIDER_TOKEN`` is known but has no grant."""


def headers_for(
    token: str, account_id: str, user_agent: str = DEFAULT_USER_AGENT
) -> dict[str, str]:
    """Request headers Harvest expects: bearer token, account id and a User-Agent."""
    return {
        "Authorization": f"Bearer {token}",
        "Harvest-Account-Id": account_id,
        "User-Agent": user_agent,
    }


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(days_before_epoch: float) -> str:
    return iso(EPOCH - dt.timedelta(days=days_before_epoch))


def _statement_key(seed: str) -> str:
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


@dataclass
class AccountData:
    """Fresh, mutable records of one account (owned by one simulator)."""

    fixture: AccountFixture
    company: Record
    collections: dict[str, dict[int, Record]]
    parents: Parents = field(default_factory=dict)
    """Records listed only under another (an invoice's messages): the id of that other."""


def user_record(p: Person, fx: AccountFixture) -> Record:
    return {
        "id": p.id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "telephone": "",
        "timezone": "London" if fx.currency == "GBP" else "Eastern Time (US & Canada)",
        "has_access_to_all_future_projects": p.is_admin,
        "is_contractor": p.is_contractor,
        "is_active": True,
        "weekly_capacity": 126000,
        "default_hourly_rate": 120.0 if p.is_admin else 90.0,
        "cost_rate": 60.0 if p.is_admin else 45.0,
        "roles": ["Lead"] if p.is_admin else ["Staff"],
        "access_roles": ["administrator"] if p.is_admin else ["member"],
        "permissions_claims": ["expenses:read:all"] if p.is_admin else ["expenses:read:own"],
        "avatar_url": f"https://cache.harvestapp.com/assets/profile_images/sim_{p.id}.png",
        "created_at": _stamp(400),
        "updated_at": _stamp(30),
    }


def build_account(account_id: str) -> AccountData:
    """Build a fresh copy of one account's records."""
    fx = ACCOUNTS[account_id]
    cols: dict[str, dict[int, Record]] = {
        name: {}
        for name in (
            "users",
            "clients",
            "contacts",
            "projects",
            "tasks",
            "time_entries",
            "expenses",
            "expense_categories",
            "task_assignments",
            "user_assignments",
            *BILLING_COLLECTIONS,
        )
    }
    for p in fx.people:
        cols["users"][p.id] = user_record(p, fx)
    for n, (cid, cname, cur) in enumerate(fx.clients):
        cols["clients"][cid] = {
            "id": cid,
            "name": cname,
            "is_active": True,
            "address": f"{10 + n} Market Street",
            "statement_key": _statement_key(f"{account_id}:{cid}"),
            "created_at": _stamp(300 - n),
            "updated_at": _stamp(100 - n),
            "currency": cur,
        }
    for n, (kid, first, last, cid) in enumerate(fx.contacts):
        client = cols["clients"][cid]
        cols["contacts"][kid] = {
            "id": kid,
            "title": "Operations Lead",
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}@{client['name'].split()[0].lower()}.example",
            "phone_office": "",
            "phone_mobile": "",
            "fax": "",
            "created_at": _stamp(280 - n),
            "updated_at": _stamp(90 - n),
            "client": {"id": cid, "name": client["name"]},
        }
    for n, (pid, pname, code, cid, budget) in enumerate(fx.projects):
        client = cols["clients"][cid]
        cols["projects"][pid] = {
            "id": pid,
            "name": pname,
            "code": code,
            "is_active": True,
            "bill_by": "Project",
            "budget": budget,
            "budget_by": "project",
            "budget_is_monthly": False,
            "notify_when_over_budget": True,
            "over_budget_notification_percentage": 80.0,
            "over_budget_notification_date": None,
            "show_budget_to_all": False,
            "created_at": _stamp(250 - n),
            "updated_at": _stamp(60 - n),
            "starts_on": "2023-09-01",
            "ends_on": None,
            "is_billable": True,
            "is_fixed_fee": False,
            "notes": "",
            "client": {"id": cid, "name": client["name"], "currency": client["currency"]},
            "cost_budget": None,
            "cost_budget_include_expenses": False,
            "hourly_rate": 100.0 + 10 * n,
            "fee": None,
        }
    for n, (tid, tname, billable) in enumerate(fx.tasks):
        cols["tasks"][tid] = {
            "id": tid,
            "name": tname,
            "billable_by_default": billable,
            "default_hourly_rate": 100.0 if billable else 0.0,
            "is_default": n < 2,
            "is_active": True,
            "created_at": _stamp(260 - n),
            "updated_at": _stamp(70 - n),
        }
    for n, (eid, ename) in enumerate(fx.expense_categories):
        cols["expense_categories"][eid] = {
            "id": eid,
            "name": ename,
            "unit_name": None,
            "unit_price": None,
            "is_active": True,
            "created_at": _stamp(240 - n),
            "updated_at": _stamp(50 - n),
        }
    _assign_everyone(cols)
    parents: Parents = {"invoice_messages": {}, "invoice_payments": {}, "estimate_messages": {}}
    add_billing(account_id, cols, parents, _stamp, cols["users"][fx.admin.id])
    data = AccountData(fixture=fx, company=_company(fx), collections=cols, parents=parents)
    base = int(account_id[:2]) * 100000 + 50000
    for i in range(TIME_ENTRIES_PER_ACCOUNT):
        person = fx.people[i % len(fx.people)]
        project = fx.projects[(i // 4) % len(fx.projects)]
        task = fx.tasks[(i // 3) % len(fx.tasks)]
        day = (EPOCH - dt.timedelta(days=1 + i // 3)).date().isoformat()
        entry: Record = {
            "id": base * 100 + i + 1,
            "spent_date": day,
            "hours": [0.5, 1.0, 1.5, 2.0, 3.25, 4.0, 6.0, 7.5][(i * 5) % 8],
            "notes": f"{task[1]} for {project[1]} (#{i + 1})",
            "is_locked": i >= 180,
            "locked_reason": "Item Invoiced and Approved" if i >= 180 else None,
            "is_closed": False,
            "is_billed": i >= 180,
            "timer_started_at": None,
            "started_time": None,
            "ended_time": None,
            "is_running": False,
            "billable": task[2],
            "budgeted": True,
            "billable_rate": 100.0 if task[2] else None,
            "cost_rate": 50.0,
            "created_at": _stamp(1 + i / 3),
            "updated_at": _stamp(1 + i / 3),
            "invoice": None,
            "external_reference": None,
        }
        link_time_entry(data, entry, person.id, project[0], task[0])
        data.collections["time_entries"][entry["id"]] = entry
    ebase = int(account_id[:2]) * 100000 + 60000
    for i in range(20):
        person = fx.people[i % len(fx.people)]
        project = fx.projects[i % len(fx.projects)]
        cat = fx.expense_categories[i % len(fx.expense_categories)]
        expense: Record = {
            "id": ebase * 100 + i + 1,
            "notes": f"{cat[1]} for {project[1]}",
            "total_cost": round(12.5 + 7.25 * i, 2),
            "units": 1.0,
            "is_closed": False,
            "is_locked": False,
            "is_billed": i % 5 == 0,
            "locked_reason": None,
            "spent_date": (EPOCH - dt.timedelta(days=2 + 4 * i)).date().isoformat(),
            "created_at": _stamp(2 + 4 * i),
            "updated_at": _stamp(2 + 4 * i),
            "billable": i % 3 != 0,
            "receipt": None,
            "invoice": None,
        }
        link_expense(data, expense, person.id, project[0], cat[0])
        data.collections["expenses"][expense["id"]] = expense
    return data


def _company(fx: AccountFixture) -> Record:
    return {
        "base_uri": f"https://{fx.subdomain}.harvestapp.com",
        "full_domain": f"{fx.subdomain}.harvestapp.com",
        "name": fx.name,
        "is_active": True,
        "week_start_day": "Monday",
        "wants_timestamp_timers": False,
        "time_format": "hours_minutes",
        "date_format": "%Y-%m-%d",
        "plan_type": "simple-v4",
        "expense_feature": True,
        "invoice_feature": True,
        "estimate_feature": True,
        "approval_feature": True,
        "clock": "24h" if fx.currency == "GBP" else "12h",
        "currency_code_display": "iso_code_none",
        "currency_symbol_display": "symbol_before",
        "decimal_symbol": ".",
        "thousands_separator": ",",
        "color_scheme": "orange",
        "weekly_capacity": 126000,
    }


def _assignment_id(kind: int, project_id: int, other_id: int) -> int:
    return kind * 10**9 + (project_id % 10**4) * 10**5 + other_id % 10**5


def _assign_everyone(cols: dict[str, dict[int, Record]]) -> None:
    """Every task and every person on every project, with the ids the time entries carry."""
    for project in cols["projects"].values():
        pid, ref = project["id"], {k: project[k] for k in ("id", "name", "code")}
        dates = {"created_at": project["created_at"], "updated_at": project["updated_at"]}
        for task in cols["tasks"].values():
            aid = _assignment_id(4, pid, task["id"])
            cols["task_assignments"][aid] = {
                "id": aid, "billable": task["billable_by_default"], "is_active": True, **dates,
                "hourly_rate": project["hourly_rate"], "budget": None, "project": ref,
                "task": {"id": task["id"], "name": task["name"]},
            }  # fmt: skip
        for user in cols["users"].values():
            aid = _assignment_id(3, pid, user["id"])
            cols["user_assignments"][aid] = {
                "id": aid, "is_project_manager": user["access_roles"] == ["administrator"],
                "is_active": True, "use_default_rates": True, "budget": None, **dates,
                "hourly_rate": project["hourly_rate"], "project": ref,
                "user": {"id": user["id"], "name": f"{user['first_name']} {user['last_name']}"},
            }  # fmt: skip


def link_time_entry(
    data: AccountData, entry: Record, user_id: int, project_id: int, task_id: int
) -> None:
    """Fill the nested user/client/project/task/assignment objects of a time entry."""
    cols = data.collections
    user = cols["users"][user_id]
    project = cols["projects"][project_id]
    task = cols["tasks"][task_id]
    entry["user"] = {"id": user_id, "name": f"{user['first_name']} {user['last_name']}"}
    entry["client"] = dict(project["client"])
    entry["project"] = {"id": project_id, "name": project["name"], "code": project["code"]}
    entry["task"] = {"id": task_id, "name": task["name"]}
    entry["user_assignment"] = {
        "id": _assignment_id(3, project_id, user_id),
        "is_project_manager": bool(user["access_roles"] == ["administrator"]),
        "is_active": True,
        "budget": None,
        "created_at": project["created_at"],
        "updated_at": project["created_at"],
        "hourly_rate": project["hourly_rate"],
    }
    entry["task_assignment"] = {
        "id": _assignment_id(4, project_id, task_id),
        "billable": task["billable_by_default"],
        "is_active": True,
        "created_at": project["created_at"],
        "updated_at": project["created_at"],
        "hourly_rate": project["hourly_rate"],
        "budget": None,
    }


def link_expense(
    data: AccountData, expense: Record, user_id: int, project_id: int, category_id: int
) -> None:
    """Fill the nested objects of an expense."""
    cols = data.collections
    user = cols["users"][user_id]
    project = cols["projects"][project_id]
    cat = cols["expense_categories"][category_id]
    expense["user"] = {"id": user_id, "name": f"{user['first_name']} {user['last_name']}"}
    expense["user_assignment"] = {
        "id": _assignment_id(3, project_id, user_id),
        "is_project_manager": bool(user["access_roles"] == ["administrator"]),
        "is_active": True,
        "budget": None,
        "created_at": project["created_at"],
        "updated_at": project["created_at"],
        "hourly_rate": project["hourly_rate"],
    }
    expense["project"] = {"id": project_id, "name": project["name"], "code": project["code"]}
    expense["expense_category"] = {
        "id": category_id,
        "name": cat["name"],
        "unit_price": cat["unit_price"],
        "unit_name": cat["unit_name"],
    }
    expense["client"] = dict(project["client"])
