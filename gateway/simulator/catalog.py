"""Harvest's collections: who may read and write each, and finding an account's records in them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .context import Ctx, as_int
from .data import Record
from .responses import Reply

Handler = Callable[[Ctx, "re.Match[str]"], Reply]


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


def ordered(name: str, records: Iterable[Record]) -> list[Record]:
    if name in _DATED:
        return sorted(records, key=lambda r: (r["spent_date"], r["id"]), reverse=True)
    return sorted(records, key=lambda r: int(r["id"]), reverse=True)


def visible(ctx: Ctx, coll: Collection) -> list[Record]:
    records = ctx.data.collections[coll.name].values()
    if coll.own_only and not ctx.is_admin:
        return [r for r in records if r["user"]["id"] == ctx.grant.user_id]
    return list(records)


def find(ctx: Ctx, coll: Collection, item_id: str) -> Record | None:
    wanted = as_int(item_id)
    record = ctx.data.collections[coll.name].get(wanted) if wanted is not None else None
    if record is None:
        return None
    if coll.own_only and not ctx.is_admin and record["user"]["id"] != ctx.grant.user_id:
        return None
    return record


def next_id(ctx: Ctx, name: str) -> int:
    ids = ctx.data.collections[name].keys()
    return max(ids, default=int(ctx.grant.account_id[:2]) * 10**7) + 1
